"""Add compiled bytecode to the deployment zip, so a cold start does not compile the app.

Chalice zips sources only, and a Lambda's code directory is read-only: without this, every
cold start compiles every module it imports, ours and the pinned packages' alike (about 90 ms
of a first /login, `make bench`). The .pyc files are checked-hash ones: Python compares each
with its source's hash before using it, so one that does not match its source is never
used; it is recompiled in memory, as without this step. Timestamps would not do: a zip keeps
them only to two seconds.

    python infra/add_bytecode.py ZIP ...          the zips named
    python infra/add_bytecode.py --chalice-cache  also the zip `chalice deploy` reuses
    python infra/add_bytecode.py --chalice-cache --project-dir console   the console's

`chalice package` and `chalice deploy` both build `.chalice/deployments/<hash>.zip` and reuse it
while requirements and code are unchanged, so after `--chalice-cache` a `chalice deploy` ships
the bytecode too (`make deploy` runs `make package` first for this). Run it with the Python
of the Lambda runtime (the project's virtualenv): bytecode is named after its interpreter
(`cpython-311`), and another version's would only be ignored.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Fixed so that the same sources always give the same zip bytes.
ENTRY_DATE = (1980, 1, 1, 0, 0, 0)


def chalice_cached_zip(project_dir: Path = PROJECT_DIR) -> Path:
    """Where `chalice deploy` looks for a zip to reuse, for this project as it is now."""
    from chalice.deploy.packager import LambdaDeploymentPackager
    from chalice.utils import UI, OSUtils

    python_version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packager = LambdaDeploymentPackager(osutils=OSUtils(), dependency_builder=None, ui=UI())
    return Path(packager.deployment_package_filename(str(project_dir), python_version))


def bytecode_name(source_name: str) -> str:
    """`pkg/mod.py` → `pkg/__pycache__/mod.cpython-311.pyc`, where the import system looks."""
    return importlib.util.cache_from_source(source_name)


def _is_checked_hash_pyc(data: bytes) -> bool:
    # PEP 552 header: magic, then flags (bit 0: hash-based, bit 1: checked).
    return data[:4] == importlib.util.MAGIC_NUMBER and data[4:8] == (3).to_bytes(4, "little")


def _compiles(source: bytes, name: str) -> bool:
    try:
        compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def add_bytecode(zip_path: Path) -> int:
    """Give every .py in the zip checked-hash bytecode; return how many were compiled.

    Bytecode already in the zip (a developer's __pycache__ that Chalice picked up with
    chalicelib) is timestamp-checked and would not match on Lambda: it is replaced.
    """
    with zipfile.ZipFile(zip_path) as original:
        entries = {info.filename: info for info in original.infolist()}
        sources = [name for name in entries if name.endswith(".py")]
        missing = [
            name
            for name in sources
            if bytecode_name(name) not in entries
            or not _is_checked_hash_pyc(original.read(bytecode_name(name)))
        ]
        if not any(_compiles(original.read(name), name) for name in missing):
            return 0
        fd, rewritten = tempfile.mkstemp(dir=zip_path.parent, suffix=".zip")
        os.close(fd)
        compiled_count = 0
        try:
            with (
                tempfile.TemporaryDirectory() as scratch,
                zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out,
            ):
                for name, info in entries.items():
                    if not name.endswith(".pyc"):
                        # A copy: writing records the new zip's offsets in the entry it is given.
                        kept = zipfile.ZipInfo(name, info.date_time)
                        kept.external_attr = info.external_attr
                        kept.compress_type = info.compress_type
                        out.writestr(kept, original.read(info))
                for name in sources:
                    source = Path(scratch) / "source.py"
                    source.write_bytes(original.read(name))
                    compiled = Path(scratch) / "compiled.pyc"
                    try:
                        py_compile.compile(
                            str(source),
                            cfile=str(compiled),
                            dfile=name,
                            doraise=True,
                            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                        )
                    except py_compile.PyCompileError:
                        continue  # it would not import on Lambda either: leave it as it is
                    entry = zipfile.ZipInfo(bytecode_name(name), ENTRY_DATE)
                    entry.external_attr = 0o644 << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(entry, compiled.read_bytes())
                    compiled_count += 1
            os.chmod(rewritten, zip_path.stat().st_mode & 0o777)
            os.replace(rewritten, zip_path)
        finally:
            if os.path.exists(rewritten):
                os.unlink(rewritten)
    return compiled_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zips", nargs="*", type=Path, help="deployment zips to complete")
    parser.add_argument(
        "--chalice-cache",
        action="store_true",
        help="also the zip in .chalice/deployments that chalice deploy reuses",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        help="the Chalice project whose cache --chalice-cache means (the support console: console)",
    )
    args = parser.parse_args(argv)
    zips = list(args.zips)
    if args.chalice_cache:
        cached = chalice_cached_zip(args.project_dir.resolve())
        if not cached.exists():
            parser.error(f"{cached} does not exist: run `make package` (chalice package) first")
        zips.append(cached)
    if not zips:
        parser.error("name a zip or pass --chalice-cache")
    for path in zips:
        added = add_bytecode(path)
        print(f"{path}: {added} modules compiled" if added else f"{path}: already compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
