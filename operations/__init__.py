"""What runs across the apps: the sweep (hitl_sweep) and the demo data (seed_demo)."""
