"""What a run leaves on disk and how it is read back: storage (local or fsspec, whole-or-nothing writes), run
folders, checkpoints (best/last, read as data), what a checkpoint may decide, the checkpoint writer."""
