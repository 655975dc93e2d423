"""Sentence embeddings for FAQ matching: the encoder, its on-disk vector cache, entry vectors."""
