"""Reading spectrum images, writing results: load, cubes, result files, safe outputs."""
