"""The .tseal container (spec/FORMAT.md): pure bytes in, bytes out; no files, no policy."""
