"""The base of every config model: unknown keys are errors, values are frozen.

It lives in the kernel because adapters declare their own account models on it (an adapter's
folder is the one place that knows what its account needs) and the config schema in
handlers/config.py assembles them from the platform table (bots/platforms.py).
"""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
