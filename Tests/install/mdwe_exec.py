#!/usr/bin/env python3
"""Executes COMMAND with the kernel's memory-deny-write-execute in force (prctl PR_SET_MDWE,
Linux 6.3+; inherited across fork and execve), as MemoryDenyWriteExecute= asks: no mapping may
become both writable and executable. Exits 3 when the kernel lacks it. Usage: mdwe_exec.py CMD..."""
import ctypes, os, sys

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print("mdwe_exec: PR_SET_MDWE failed: " + os.strerror(ctypes.get_errno()), file=sys.stderr)
    sys.exit(3)
os.execvp(sys.argv[1], sys.argv[1:])
