# The shmem inode flags word as Linux 6.18 holds it: VM_NORESERVE (0x00200000) and VM_LOCKED
# (0x00002000) themselves in shmem_inode_info.flags. 6ff1610ced56 "mm: shmem: use SHMEM_F_*
# flags instead of VM_* flags" (v6.19) moved them to SHMEM_F_NORESERVE BIT(0) and
# SHMEM_F_LOCKED BIT(1) -- "No functional changes intended" -- which is what memfd+flags has:
#     shmemcheck diff memfd+flags examples/flags-as-6.18.py
from model.lang import Field, word

VM_NORESERVE, VM_LOCKED = 0x00200000, 0x00002000

design = base("memfd+flags").derive(
    "memfd+flags@6.18",
    "memfd+flags with 6.18's layout of the flags word (VM_* bits)",
    fields=(Field("iflags", word(22, {"VM_LOCKED": VM_LOCKED, "VM_NORESERVE": VM_NORESERVE}),
                  "shmem_inode_info.flags holding VM_* bits (up to 6.18)"),),
    layout={"NORESERVE": ("iflags", VM_NORESERVE), "LOCKED": ("iflags", VM_LOCKED)},
)
