"""The FAQ feature: the file format, the matcher, and answering citizens from it."""
