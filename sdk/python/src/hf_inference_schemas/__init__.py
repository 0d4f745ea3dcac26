"""Validate hf-inference requests and responses on the client, with the server's own schemas.

    from hf_inference_schemas import validate, ValidationError
    validate("text-generation", {"inputs": "Hi", "parameters": {"max_new_tokens": 16}})

The schemas are the bundle of the server release this package is versioned with
(`core/schemas/bundle/`, copied in when the package is built). Values that depend on the model
(a label, a token limit) are checked by the server only.
"""

import functools
import json
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

__all__ = ["ValidationError", "validate", "validate_response", "is_valid", "tasks"]

# HF_TASK aliases the server accepts, as the schema each one uses
ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "conversational": "text-generation",
}


class ValidationError(ValueError):
    """A payload the schema refuses; `path` is the JSON path of the offending value."""

    def __init__(self, task, path, message):
        super().__init__(f"invalid {task} payload at {path}: {message}")
        self.task = task
        self.path = path
        self.message = message


def _read(name):
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text("utf-8"))


@functools.lru_cache(maxsize=None)
def _index():
    return _read("index.json")


def tasks():
    """The tasks this package validates (without aliases)."""
    return sorted(_index()["tasks"])


@functools.lru_cache(maxsize=None)
def _validator(task, part):
    task = ALIASES.get(task, task)
    entry = _index()["tasks"].get(task)
    if entry is None:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(tasks())}")
    root = dict(_read(entry["file"]))
    root["$ref"] = entry[part]
    return Draft202012Validator(root)


def _leaves(error):
    """A oneOf/anyOf failure only says no branch matched: its branches' errors say what to fix."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def _check(task, part, value):
    errors = list(_validator(task, part).iter_errors(value))
    if errors:
        leaves = [leaf for e in errors for leaf in _leaves(e)]
        # the deepest: it is about the value that is wrong, not about its containers
        deepest = max(len(e.absolute_path) for e in leaves)
        error = best_match(e for e in leaves if len(e.absolute_path) == deepest)
        raise ValidationError(task, error.json_path, error.message)


def validate(task, payload):
    """Raises ValidationError if `payload` is not a valid request body for `task`."""
    _check(task, "request", payload)


def validate_response(task, body):
    """Raises ValidationError if `body` is not a valid response of `task`."""
    _check(task, "response", body)


def is_valid(task, payload):
    """Whether `payload` is a valid request body for `task`."""
    return _validator(task, "request").is_valid(payload)
