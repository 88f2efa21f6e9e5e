"""``fusionforge fetch``: a listing of image URLs and captions -> image files and a pairs listing ``shard`` reads.

``config.py`` the settings; ``listing.py`` the listing's rows as work items; ``scheduler.py`` who may
be sent next (per-host limits, host pauses); ``download.py`` one URL's HTTP exchange (retries,
timeouts, size cap, content type, opt-outs); ``store.py`` the decode check and the image file;
``journal.py`` every decision of an unfinished partition (URL-level resume); ``parts.py`` a finished
partition's pairs and ledger parts; ``run.py`` the run; ``media_server.py`` a local server for tests
and the benchmark.
"""
