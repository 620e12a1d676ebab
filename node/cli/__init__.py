"""The `ephyto` command line."""
