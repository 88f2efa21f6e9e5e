"""Early-fusion packing: count records, draw windows at the target vision share, pack them, write the plan."""
