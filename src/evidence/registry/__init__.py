"""The registry wing: the study registry under ``data/``, read, checked and queried.

- :mod:`evidence.registry.csvfile`: CSV reading with the physical line of every record;
  problems as ``FILE:LINE: column: message``.
- :mod:`evidence.registry.rules`: the files, columns and vocabularies of the registry,
  the one parser of the subgroup grammar, and :func:`validate`.
- :mod:`evidence.registry.store`: the validated tables (:func:`load`), their cache, the
  one way to query them and the digest of what a query read.
- :mod:`evidence.registry.audit`: every quote checked against its source text.

Imports nothing from the other wings.  The names below are the wing's public API.
"""

from __future__ import annotations

from evidence.registry.csvfile import RegistryError, RegistryProblem
from evidence.registry.rules import (
    ARM_ROLES,
    CATEGORIES,
    HER2_CATEGORIES,
    MARGIN,
    USES,
    parse_subgroup,
    validate,
)
from evidence.registry.store import Registry, frame_digest, load, query_of, registry_sha256

__all__ = [
    "ARM_ROLES",
    "CATEGORIES",
    "HER2_CATEGORIES",
    "MARGIN",
    "USES",
    "Registry",
    "RegistryError",
    "RegistryProblem",
    "frame_digest",
    "load",
    "parse_subgroup",
    "query_of",
    "registry_sha256",
    "validate",
]
