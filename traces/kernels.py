"""Other kernels than the machine's own: Debian's ready-built cloud kernels, found in the package
archive with apt, downloaded with `apt-get download` (apt verifies the archive's signatures) and
unpacked with `dpkg-deb -x` into a cache, so that traces/guest.py can boot them under QEMU.

apt runs with a private sources list and private state (lists, cache) under the cache directory:
the machine's apt configuration is only read, to take the archive's URI and keyring from it (no
host name is written here). A fetched kernel is a directory `<cache>/kernels/<version>/` holding
`vmlinuz`, `config` and `meta.json`; it is filled under a temporary name and renamed into place
last, so a half-fetched kernel never looks fetched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ArchiveError", "FetchedKernel", "KernelPackage", "cache_dir", "discover", "fetch",
           "fetched", "match", "qemu_binary", "update_lists", "upstream_version"]

QEMU = "qemu-system-x86_64"
APT_SOURCES = ("/etc/apt/sources.list.d", "/etc/apt/sources.list")
#: the package names holding a cloud kernel image: 6.x `linux-image-<abi>-cloud-amd64-unsigned`
#: (image in boot/), 7.x `linux-binary-unsigned-<abi>-cloud-amd64` (image in usr/lib/modules/,
#: config in the linux-base-<abi>-cloud-amd64 package it depends on)
_IMAGE_RE = re.compile(r"^(linux-image-(?P<a>.+)-cloud-amd64-unsigned|"
                       r"linux-binary-unsigned-(?P<b>.+)-cloud-amd64)$")
_SEARCH = r"^linux-image-.*-cloud-amd64-unsigned$|^linux-binary-unsigned-.*-cloud-amd64$"


class ArchiveError(Exception):
    """The archive, apt or dpkg-deb failed: one line for the user."""


@dataclass(frozen=True)
class KernelPackage:
    """A kernel build the archive offers."""

    version: str  # upstream version: 6.1.176, 7.3-rc7
    package: str  # the image package
    deb_version: str  # its Debian version: 6.1.176-1, 7.3~rc7-1~exp1
    base: str | None  # the package holding the config (7.x), if another one
    size: int  # bytes to download


@dataclass(frozen=True)
class FetchedKernel:
    """A kernel unpacked in the cache."""

    version: str
    path: Path  # <cache>/kernels/<version>
    package: str
    deb_version: str

    @property
    def vmlinuz(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def config(self) -> Path:
        return self.path / "config"


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/shmemcheck (default ~/.cache/shmemcheck)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shmemcheck"


def qemu_binary() -> str | None:
    """The path of qemu-system-x86_64, or None (`apt-get install qemu-system-x86`)."""
    return shutil.which(QEMU)


def upstream_version(deb_version: str) -> str:
    """The kernel's version from a Debian package version: the part before the Debian revision,
    with Debian's `~rc` spelled as the kernel's `-rc` (7.3~rc7-1~exp1 -> 7.3-rc7)."""
    up = deb_version.split(":", 1)[-1].rsplit("-", 1)[0]
    return up.replace("~rc", "-rc").split("~")[0]


def _version_key(v: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a kernel version: numbers as numbers; an -rc sorts before its release."""
    parts: list[tuple[int, int | str]] = []
    for p in re.split(r"[.\-+~]", v):
        if p.isdigit():
            parts.append((1, int(p)))
        elif p.startswith("rc") and p[2:].isdigit():
            parts.append((0, int(p[2:])))
        else:
            parts.append((2, p))
    if not any(k == 0 for k, _ in parts):
        parts.append((1, 1 << 30))  # 7.3 > 7.3-rc7
    return tuple(parts)


# ---- apt ---------------------------------------------------------------------------------------
def _machine_sources() -> list[tuple[str, list[str], str | None]]:
    """(URI, suites, Signed-By keyring) of each `deb` source in the machine's apt configuration
    (deb822 .sources files and one-line .list files)."""
    files: list[Path] = []
    for p in APT_SOURCES:
        path = Path(p)
        if path.is_dir():
            files += sorted(f for f in path.iterdir() if f.suffix in (".sources", ".list"))
        elif path.is_file():
            files.append(path)
    out: list[tuple[str, list[str], str | None]] = []
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get(
                        "enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split(), fields.get("signed-by")))
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[(?P<o>[^\]]*)\]\s+)?(?P<u>\S+)\s+(?P<s>\S+)", line)
                if m:
                    opts = dict(o.split("=", 1) for o in (m.group("o") or "").split() if "=" in o)
                    out.append((m.group("u"), [m.group("s")], opts.get("signed-by")))
    return out


def private_sources() -> str:
    """The private sources list: the machine's Debian archive (the source naming its release's
    codename) with that release, its backports, stable, unstable and experimental, and its
    security archive; each signed by the keyring the machine's configuration names."""
    main = security = None
    for uri, suites, key in _machine_sources():
        codenames = [s for s in suites if "-" not in s]
        if any(s.endswith("-security") for s in suites) and security is None:
            security = (uri, [s for s in suites if s.endswith("-security")], key)
        elif codenames and main is None and "/debian" in uri:
            main = (uri, codenames, key)
    if main is None:
        raise ArchiveError("no Debian archive in the machine's apt configuration "
                           f"({', '.join(APT_SOURCES)})")
    uri, codenames, key = main
    code = codenames[0]
    opt = f"[signed-by={key}] " if key else ""
    lines = [f"deb {opt}{uri} {s} main"
             for s in (code, f"{code}-backports", "stable", "unstable", "experimental")]
    if security is not None:
        suri, ssuites, skey = security
        sopt = f"[signed-by={skey}] " if skey else ""
        lines += [f"deb {sopt}{suri} {s} main" for s in ssuites]
    return "\n".join(lines) + "\n"


def _apt_options(root: Path) -> list[str]:
    return ["-o", f"Dir::Etc::sourcelist={root / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=/dev/null",
            "-o", f"Dir::State::Lists={root / 'lists'}",
            "-o", f"Dir::State::status={root / 'status'}",
            "-o", f"Dir::Cache={root / 'cache'}",
            "-o", "APT::Architectures=amd64", "-o", "Acquire::Languages=none",
            "-q"]


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None, timeout: float = 900
         ) -> str:
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, timeout=timeout,
                           check=False)
    except FileNotFoundError:
        raise ArchiveError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ArchiveError(f"{what}: {cmd[0]} timed out after {timeout:.0f} s") from None
    if p.returncode != 0:
        errs = [ln.strip() for ln in (p.stderr or p.stdout).splitlines()
                if ln.strip() and not ln.startswith("W:")]
        raise ArchiveError(f"{what}: {cmd[0]} failed: {errs[-1] if errs else p.returncode}")
    return p.stdout


def _apt_root() -> Path:
    root = cache_dir() / "apt"
    for d in ("lists/partial", "cache/archives/partial"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    return root


def update_lists() -> None:
    """`apt-get update` of the private sources list (apt checks the Release signatures)."""
    root = _apt_root()
    (root / "sources.list").write_text(private_sources())
    _run(["apt-get", *_apt_options(root), "update"], "apt-get update")


def discover(*, update: bool = False) -> list[KernelPackage]:
    """The cloud kernels the archive offers, one per upstream version (the highest Debian
    version of it), oldest first. Updates the private lists if asked or never done."""
    root = _apt_root()
    if update or not any((root / "lists").glob("*_Packages*")):
        update_lists()
    apt = ["apt-cache", *_apt_options(root)]
    names = sorted({ln.split(" ", 1)[0] for ln in _run(
        [*apt, "search", "--names-only", _SEARCH], "apt-cache search").splitlines() if ln})
    best: dict[str, KernelPackage] = {}
    if not names:
        return []
    shown = _run([*apt, "show", "--no-all-versions", *names], "apt-cache show")
    for stanza in re.split(r"\n\s*\n", shown):
        f = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, flags=re.MULTILINE))
        m = _IMAGE_RE.match(f.get("Package", ""))
        if not m or "Version" not in f:
            continue
        base = None
        if m.group("b"):
            dep = re.search(r"(linux-base-\S+)", f.get("Depends", ""))
            base = dep.group(1) if dep else None
        kp = KernelPackage(upstream_version(f["Version"]), f["Package"], f["Version"], base,
                           int(f.get("Size", "0") or 0))
        old = best.get(kp.version)
        if old is None or _debian_newer(kp.deb_version, old.deb_version):
            best[kp.version] = kp
    return sorted(best.values(), key=lambda k: _version_key(k.version))


def _debian_newer(a: str, b: str) -> bool:
    """Debian version a > b (dpkg --compare-versions)."""
    try:
        return subprocess.run(["dpkg", "--compare-versions", a, "gt", b],
                              check=False).returncode == 0
    except FileNotFoundError:
        raise ArchiveError("dpkg not found: the kernels come from a Debian archive") from None


def match(prefix: str, versions: Sequence[str]) -> str | None:
    """The newest of `versions` that is `prefix` or starts with `prefix` followed by . or -
    (6.1 -> 6.1.192; 7.3-rc -> 7.3-rc7)."""
    hits = [v for v in versions if v == prefix or v.startswith(prefix + ".")
            or v.startswith(prefix + "-") or (prefix.endswith(("-rc", "-", "."))
                                              and v.startswith(prefix))]
    return max(hits, key=_version_key) if hits else None


# ---- the cache ---------------------------------------------------------------------------------
def fetched() -> list[FetchedKernel]:
    """The kernels in the cache, oldest first (a directory without meta.json is not one)."""
    root = cache_dir() / "kernels"
    out: list[FetchedKernel] = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if d.name.startswith("."):
            continue
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if (d / "vmlinuz").is_file():
            out.append(FetchedKernel(d.name, d, str(meta.get("package", "?")),
                                     str(meta.get("deb_version", "?"))))
    return sorted(out, key=lambda k: _version_key(k.version))


def _find(root: Path, pattern: str) -> Path | None:
    hits = sorted(root.glob(pattern))
    return hits[0] if hits else None


def fetch(kp: KernelPackage) -> FetchedKernel:
    """Download (apt-get download: apt verifies the archive's signatures and the package's
    hash) and unpack (dpkg-deb -x) the kernel; its directory appears whole or not at all."""
    root = _apt_root()
    kroot = cache_dir() / "kernels"
    kroot.mkdir(parents=True, exist_ok=True)
    final = kroot / kp.version
    with tempfile.TemporaryDirectory(prefix=f".fetch-{kp.version}-", dir=kroot) as tmp:
        work = Path(tmp)
        debs = work / "debs"
        debs.mkdir()
        pkgs = [f"{kp.package}={kp.deb_version}"] + (
            [f"{kp.base}={kp.deb_version}"] if kp.base else [])
        _run(["apt-get", *_apt_options(root), "-o", "APT::Sandbox::User=root", "download",
              *pkgs], f"apt-get download {kp.package}", cwd=debs)
        tree = work / "tree"
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(tree)], f"dpkg-deb -x {deb.name}")
        image = _find(tree, "boot/vmlinuz-*") or _find(tree, "usr/lib/modules/*/vmlinuz*")
        config = _find(tree, "boot/config-*") or _find(tree, "usr/lib/modules/*/config")
        if image is None or config is None:
            raise ArchiveError(f"{kp.package} {kp.deb_version}: no "
                               f"{'kernel image' if image is None else 'config'} in the package")
        out = work / "kernel"
        out.mkdir()
        shutil.copyfile(image, out / "vmlinuz")
        shutil.copyfile(config, out / "config")
        (out / "meta.json").write_text(json.dumps(
            {"version": kp.version, "package": kp.package, "deb_version": kp.deb_version,
             "base": kp.base, "image": str(image.relative_to(tree))}, indent=1) + "\n")
        try:
            if final.exists():
                shutil.rmtree(final)
            os.rename(out, final)
        except OSError as e:
            raise ArchiveError(f"cannot put {kp.version} into {kroot}: {e.strerror}") from None
    return FetchedKernel(kp.version, final, kp.package, kp.deb_version)
