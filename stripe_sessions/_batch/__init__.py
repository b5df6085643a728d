"""Batch creation: the engine, its pacing, the input reader, and results and progress."""
