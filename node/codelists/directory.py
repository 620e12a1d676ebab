"""An operator's override directory of newer code lists: the update path on disk.

The registry drops newer lists here, and an operator does with `ephyto codelists
import`: one `<name>.json` per list, and `locations.tsv.gz` for newer UN/LOCODE
locations (node.codelists.locations), which is read only when first needed.
"""

from __future__ import annotations

import logging
import pathlib

from node.codelists.lists import MAX_BYTES, CodeList, CodeLists, version_key
from node.codelists.locations import ASSET_NAME, MAX_ASSET_BYTES, LocationSource
from node.errors import ConfigError, InputError

log = logging.getLogger(__name__)


def load_directory(path: pathlib.Path, base: CodeLists) -> CodeLists:
    """`base` updated with every *.json code list in an operator's override directory,
    and with its locations asset if there is one.

    Files apply in name order through CodeLists.updated_with. A malformed file
    is a ConfigError naming it. A file whose version is not newer than the
    installed one is skipped with a warning: that is the normal state after a
    node upgrade shipped a newer bundled list, and must not stop the node. Of the
    locations asset only the header is read here: the rest when first needed.
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
    asset = path / ASSET_NAME
    if asset.is_file():
        lists = _with_locations(asset, lists)
    return lists


def _with_locations(asset: pathlib.Path, lists: CodeLists) -> CodeLists:
    try:
        if asset.stat().st_size > MAX_ASSET_BYTES:
            raise ConfigError(f"locations file {asset}: larger than {MAX_ASSET_BYTES} bytes")
    except OSError as exc:
        raise ConfigError(f"locations file {asset}: {exc}") from None
    source = LocationSource(str(asset), asset.read_bytes)
    try:
        version = version_key(source.version)  # reads the header: a broken file stops here
    except InputError as exc:
        raise ConfigError(f"locations file {asset}: {exc}") from None
    installed = lists.locations
    if installed is not None and version <= version_key(installed.version):
        log.warning(
            "locations file %s: version %s is not newer than the installed %s; skipped",
            asset,
            source.version,
            installed.version,
        )
        return lists
    return lists.with_locations(source)
