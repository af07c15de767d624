"""Errors a user can cause by feeding the models too little or malformed data."""

from __future__ import annotations

import dagster as dg


class InsufficientData(dg.Failure):
    """The data cannot support a fair time-based evaluation; the message names what is missing."""

    def __init__(self, message: str):
        super().__init__(description=message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MalformedFrame(ValueError):
    """An input frame does not match the columns and types the model was trained with."""
