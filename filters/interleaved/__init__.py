"""Interleaved-document filters (OBELICS / MINT-1T style): node rules, document rules, URL block lists."""
