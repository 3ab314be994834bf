"""Exporters: one trace, many audiences.

`EXPORTERS` maps a format name to (file extension, fn(design, replayed) -> str), where
`replayed` is the trace replayed on the model (traces/replayed.py; checker/replay.py's
`replay_for_export` makes it): outcomes written `?` take the model's value, and the model
states give the "fields that changed". A trace that the model cannot replay (a call outside
the design) is still exported by the reproducer formats; the pictures and the text then show
no state. One module per format:

* ``text``    (text.py) mail-ready: ASCII, at most 72 columns, one step per line with the
              model state fields it changed, and the expectation (with the property's
              rationale) at the end;
* ``itf``     (itf.py) the Apalache/Quint Informal Trace Format (JSON); `trace_from_itf`
              reads it back;
* ``dot``     (graph.py) a Graphviz picture: states (the fields that changed) joined by the
              steps;
* ``mermaid`` (graph.py) the same picture as a Mermaid flowchart;
* ``c``       (c.py) a kselftest-style C reproducer in the dialect of memfd_test.c (raw
              system calls, every outcome checked, exit 0/1/4 = KSFT_PASS/KSFT_FAIL/KSFT_SKIP);
* ``python``  (python.py) the same reproducer as a standalone Python script (stdlib + ctypes);
* ``syz``     (syz.py) a syzkaller program with each call's expected errno as a trailing
              comment.

The reproducers share one lowering of the steps (lower.py) and speak both designs' calls: the
memfd ones (memfd_create, fcntl seals, pins...) and guest_memfd's (open("/dev/kvm"), the
KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD and KVM_SET_USER_MEMORY_REGION2 ioctls with their
structs, read/write/pread64/lseek). The ioctl structs are declared with <linux/kvm.h>'s layout
(struct kvm_create_guest_memfd: 64 bytes, struct kvm_userspace_memory_region2: 160), as
traces/kernel.py packs them; a machine without a usable /dev/kvm, or without a guest_memfd
creation flag the trace needs, is a KSFT_SKIP. The C and Python runtimes the reproducers copy
are real files, runtime/repro.c and runtime/runtime.py, shipped as package data.
"""

from __future__ import annotations

from collections.abc import Callable

from model.lang.design import Design
from traces.export.c import export_c
from traces.export.common import ExportError
from traces.export.graph import export_dot, export_mermaid
from traces.export.itf import export_itf, trace_from_itf
from traces.export.python import export_python
from traces.export.syz import export_syz
from traces.export.text import export_text
from traces.replayed import Replayed

ExportFn = Callable[[Design, Replayed], str]

#: format name -> (file extension, exporter)
EXPORTERS: dict[str, tuple[str, ExportFn]] = {
    "text": ("txt", export_text),
    "itf": ("itf.json", export_itf),
    "dot": ("dot", export_dot),
    "mermaid": ("mmd", export_mermaid),
    "c": ("c", export_c),
    "python": ("py", export_python),
    "syz": ("syz", export_syz),
}

__all__ = ["EXPORTERS", "ExportError", "ExportFn", "Replayed", "export_c", "export_dot",
           "export_itf", "export_mermaid", "export_python", "export_syz", "export_text",
           "trace_from_itf"]
