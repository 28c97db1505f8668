"""Compiler flags of every Brian2 build the tests make (Cython and cpp_standalone).

-O0 with Brian2's floating-point flags: the tests check exactness against the replay, not speed, and
-O3 -march=native takes about twice as long to build (a cold cpp_standalone build of the small
networks: 120 s at -O3, 71 s at -O0 on a loaded 2-core machine).
"""

COMPILE_ARGS = ["-w", "-O0", "-ffast-math", "-fno-finite-math-only", "-std=c++11"]
