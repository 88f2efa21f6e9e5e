"""Input readers, one module per format, and the planner that splits inputs into partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fusionforge.pipelines.readers.base import InputFile, ReaderOptions
from fusionforge.pipelines.readers.html_files import read_html
from fusionforge.pipelines.readers.interleaved import read_interleaved
from fusionforge.pipelines.readers.media_folder import read_image_file, read_video_file
from fusionforge.pipelines.readers.pairs import read_pairs
from fusionforge.pipelines.readers.pdf import read_pdf
from fusionforge.pipelines.readers.text import read_text
from fusionforge.pipelines.readers.warc import read_warc
from fusionforge.pipelines.readers.webdataset_tar import read_webdataset

READERS: dict[str, Callable[[InputFile, ReaderOptions], Iterator[dict[str, Any]]]] = {
    "text": read_text,
    "pairs": read_pairs,
    "images": read_image_file,
    "interleaved": read_interleaved,
    "videos": read_video_file,
    "wds": read_webdataset,
    "warc": read_warc,
    "html": read_html,
    "pdf": read_pdf,
}


def read_file(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """Record rows of one input file, by its format."""
    return READERS[file.format](file, options)
