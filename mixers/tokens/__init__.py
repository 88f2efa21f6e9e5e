"""Token accounting: vision tokens per image or video under a VLM's processor, text tokens by a local tokenizer."""
