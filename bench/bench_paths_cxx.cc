// SPDX-License-Identifier: MIT
// The C++ operators' path, for bench/callgrind_paths.sh: N times new char[32] and
// delete[]. usage: bench_paths_cxx N
#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: bench_paths_cxx N\n");
		return 2;
	}
	long n = std::atol(argv[1]);
	for (long i = 0; i < n; i++) {
		char *p = new char[32];
		__asm__ volatile("" ::"r"(p) : "memory");
		delete[] p;
	}
	return 0;
}
