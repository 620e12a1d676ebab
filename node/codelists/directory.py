"""An operator's override directory of newer code lists: the update path on disk.

The registry (a later release) will drop newer lists here; until then an operator
does, with `ephyto codelists import`.
"""

from __future__ import annotations

import logging
import pathlib

from node.codelists.lists import MAX_BYTES, CodeList, CodeLists
from node.errors import ConfigError, InputError

log = logging.getLogger(__name__)


def load_directory(path: pathlib.Path, base: CodeLists) -> CodeLists:
    """`base` updated with every *.json code list in an operator's override directory.

    Files apply in name order through CodeLists.updated_with. A malformed file
    is a ConfigError naming it. A file whose version is not newer than the
    installed one is skipped with a warning: that is the normal state after a
    node upgrade shipped a newer bundled list, and must not stop the node.
    """
    if not path.is_dir():
        raise ConfigError(f"code list directory {path} does not exist or is not a directory")
    lists = base
    for file in sorted(path.glob("*.json")):
        try:
            if file.stat().st_size > MAX_BYTES:
                raise InputError(f"larger than {MAX_BYTES} bytes")
            code_list = CodeList.from_json_bytes(file.read_bytes())
        except (InputError, OSError) as exc:
            raise ConfigError(f"code list file {file}: {exc}") from None
        if code_list.name in lists and not code_list.is_newer_than(lists.get(code_list.name)):
            log.warning(
                "code list file %s: %s version %s is not newer than the installed %s; skipped",
                file,
                code_list.name,
                code_list.version,
                lists.get(code_list.name).version,
            )
            continue
        lists = lists.updated_with(code_list)
    return lists
