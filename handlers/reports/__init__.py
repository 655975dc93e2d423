"""Reports for the admin: what citizens asked that the FAQ does not cover
(:mod:`handlers.reports.unanswered`), and how the bot and staff are doing
(:mod:`handlers.reports.stats`). Both read storage only; ``priemnaya report`` prints them."""
