"""The engine (``core``), input readers, shard writers and the named pipelines built on them."""
