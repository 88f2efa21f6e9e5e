"""Per-host limits as a server sees them: never more than ``--per-host`` requests at once to one host, no
host waiting behind another's queue, and a host that answered 429 with ``Retry-After`` left alone meanwhile."""

from __future__ import annotations

import io
import json

from PIL import Image

from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.fetch.media_server import MediaServer, Route, image_route, redirect_route
from fusionforge.pipelines.fetch.run import run_fetch


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, "JPEG")
    return buffer.getvalue()


def run(tmp_path, urls: list[str], **settings) -> dict:
    listing = tmp_path / "urls.jsonl"
    listing.write_text("".join(json.dumps({"url": u, "caption": "c"}) + "\n" for u in urls))
    cfg = FetchConfig(listings=(str(listing),), output=str(tmp_path / "out"), backoff_s=0.05, **settings)
    return run_fetch(cfg)


def test_at_most_per_host_requests_at_once_and_hosts_do_not_wait_for_each_other(tmp_path):
    slow = Route(body=jpeg(), headers={"Content-Type": "image/jpeg"}, delay_s=0.15)
    routes = {f"/{i}.jpg": slow for i in range(24)}
    with MediaServer(routes) as server:
        # every URL of the first host comes before any of the second: a worker that waited on its URL's
        # host would leave the second host idle until the first one's queue had drained
        first = [server.url(p) for p in routes]
        second = [u.replace("127.0.0.1", "localhost") for u in first]
        report = run(tmp_path, first + second, concurrency=16, per_host=3)
        by_host = dict(server.max_in_flight)
        times = {host: [t for h, t in zip(server.hosts, server.times) if h == host] for host in by_host}
    assert report["kept"] == 48
    first_host, second_host = f"127.0.0.1:{server.port}", f"localhost:{server.port}"
    assert by_host == {first_host: 3, second_host: 3}
    assert min(times[second_host]) < min(times[first_host]) + 0.5 < max(times[first_host])  # both hosts at once


def test_a_host_that_asks_to_retry_later_gets_no_request_meanwhile(tmp_path):
    image = {"Content-Type": "image/jpeg"}
    routes = {
        "/busy.jpg": [Route(status=429, headers={"Retry-After": "1"}), Route(body=jpeg(), headers=image)],
        "/in-flight.jpg": Route(body=jpeg(), headers=image, delay_s=0.3),
        **{f"/later{i}.jpg": Route(body=jpeg(), headers=image) for i in range(4)},
    }
    with MediaServer(routes) as server:
        report = run(tmp_path, [server.url(p) for p in routes], concurrency=4, per_host=2)
        refused_at = server.times_of("/busy.jpg")[0]
        later = [t for p, t in zip(server.requests, server.times) if p.startswith("/later")]
    assert report["kept"] == 6
    assert len(later) == 4 and min(later) - refused_at >= 1.0


def test_a_redirect_to_another_host_is_followed_over_the_same_worker(tmp_path):
    with MediaServer({"/target.jpg": image_route(jpeg())}) as server:
        server.routes["/moved.jpg"] = [redirect_route(server.url("/target.jpg").replace("127.0.0.1", "localhost"))]
        report = run(tmp_path, [server.url("/moved.jpg"), server.url("/target.jpg")] * 3, concurrency=2)
        hosts = sorted(set(zip(server.requests, server.hosts)))
    assert report["kept"] == 6
    assert hosts == [
        ("/moved.jpg", f"127.0.0.1:{server.port}"),
        ("/target.jpg", f"127.0.0.1:{server.port}"),
        ("/target.jpg", f"localhost:{server.port}"),
    ]
