"""W4 and W5 at 1 and 2 threads: page faults, context switches (getrusage) and the
machine's TLB shootdowns (/proc/interrupts) per call."""

import resource

import nntk_core as nn
from nntk_bench.nntk_runners import nntk_runners
from nntk_bench.workloads import make_weights

runners = nntk_runners(make_weights(), python_api=False)


def tlb():
    for line in open("/proc/interrupts"):
        if line.strip().startswith("TLB:"):
            return sum(int(x) for x in line.split()[1:3])


for name in ("W4", "W5"):
    fn = runners[name].fn
    for th in (1, 2, 1, 2):
        nn.set_thread_count(th)
        for _ in range(5):
            fn()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = tlb()
        for _ in range(100):
            fn()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = tlb()
        print(
            f"{name} threads {th}: minor faults/call {(r1.ru_minflt - r0.ru_minflt) / 100:.2f}  major {(r1.ru_majflt - r0.ru_majflt) / 100:.2f}  "  # noqa: E501
            f"vol ctx sw/call {(r1.ru_nvcsw - r0.ru_nvcsw) / 100:.1f}  invol {(r1.ru_nivcsw - r0.ru_nivcsw) / 100:.1f}  TLB shootdowns (whole machine)/call {(t1 - t0) / 100:.2f}"  # noqa: E501
        )
    nn.set_thread_count(1)
