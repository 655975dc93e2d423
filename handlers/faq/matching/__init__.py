"""Pieces of the FAQ matcher: text normalisation, lemmas, generic Russian lexicon, the index
and the scoring. The public API lives in :mod:`handlers.faq.matcher`."""
