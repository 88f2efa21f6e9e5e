"""Writers: WebDataset shards with a Parquet manifest, and the merge of per-partition parts."""
