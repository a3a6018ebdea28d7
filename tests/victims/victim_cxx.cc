// SPDX-License-Identifier: MIT
// Victim: the C++ operator families at known sites, and bad_alloc thrown through
// the interposer. Prints "fn NAME ADDR" and "want NAME COUNT BYTES".
#include <cstdio>
#include <new>
#include <string>

struct alignas(64) Aligned {
	char b[192];
};

#define SITE(name, stmt)                                                                   \
	__attribute__((noinline)) static void name(void **out, int n)                      \
	{                                                                                  \
		for (int i = 0; i < n; i++) {                                              \
			stmt;                                                              \
			asm volatile("" ::: "memory");                                     \
		}                                                                          \
	}

SITE(site_new, out[i] = new long[4])                       // 32 bytes, operator new[]
SITE(site_new_obj, out[i] = new std::string(" "))          // operator new(sizeof string)
SITE(site_new_aligned, out[i] = new Aligned)               // aligned new, 192
SITE(site_new_nothrow, out[i] = new (std::nothrow) char[77])

int main()
{
	static void *a[1000], *b[1000], *c[1000], *d[1000];
		std::printf("fn site_new %p\nfn site_new_obj %p\nfn site_new_aligned %p\n"
		    "fn site_new_nothrow %p\n",
		    (void *)site_new, (void *)site_new_obj, (void *)site_new_aligned,
		    (void *)site_new_nothrow);
	site_new(a, 1000);
	site_new_obj(b, 1000);
	site_new_aligned(c, 1000);
	site_new_nothrow(d, 1000);
	for (int i = 0; i < 1000; i++) {
		delete[] static_cast<long *>(a[i]);
		delete static_cast<std::string *>(b[i]);
		delete static_cast<Aligned *>(c[i]);
		delete[] static_cast<char *>(d[i]);
	}
	int caught = 0;
	for (int i = 0; i < 3; i++) {
		try {
			volatile size_t huge = (size_t)1 << 62;
			char *p = new char[huge];
			p[0] = 1;
		} catch (const std::bad_alloc &) {
			caught++;
		}
	}
	// After the throws, allocations must still be traced (the guard came back down).
	site_new(a, 1000);
	for (int i = 0; i < 1000; i++)
		delete[] static_cast<long *>(a[i]);
	std::printf("want site_new 2000 64000\nwant site_new_obj 1000 %zu\n"
		    "want site_new_aligned 1000 192000\nwant site_new_nothrow 1000 77000\n"
		    "caught %d\n",
		    1000 * sizeof(std::string), caught);
	return 0;
}
