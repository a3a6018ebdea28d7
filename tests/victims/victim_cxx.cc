// SPDX-License-Identifier: MIT
// Victim: the C++ operator families at known sites, and bad_alloc thrown through
// the interposer. Prints "fn NAME ADDR" and "want NAME COUNT BYTES". Large blocks
// (always sampled: tagged) must keep their alignment and every byte; exits 1 if not.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

struct alignas(64) Aligned {
	char b[192];
};

struct alignas(256) BigAligned {
	char b[20224];
};

static int bad;
static int handler_runs;

static void on_no_memory()
{
	handler_runs++;
	std::set_new_handler(nullptr); // the next try throws bad_alloc
}

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
SITE(site_new_big, out[i] = new char[30000])        // always sampled
SITE(site_new_big_aligned, out[i] = new BigAligned) // always sampled, aligned new

// A failing allocation (bad_alloc) is not counted; the same site's successes are.
__attribute__((noinline)) static char *site_maybe_huge(size_t n)
{
	return new char[n];
}

// 1 when new of 2^62 bytes at site_maybe_huge throws bad_alloc.
static int huge_throws()
{
	try {
		volatile size_t huge = (size_t)1 << 62;
		char *p = site_maybe_huge(huge);
		p[0] = 1;
	} catch (const std::bad_alloc &) {
		return 1;
	}
	return 0;
}

int main()
{
	static void *a[1000], *b[1000], *c[1000], *d[1000];
	std::printf("fn site_new %p\nfn site_new_obj %p\nfn site_new_aligned %p\n"
		    "fn site_new_nothrow %p\nfn site_new_big %p\nfn site_new_big_aligned %p\n"
		    "fn site_maybe_huge %p\n",
		    (void *)site_new, (void *)site_new_obj, (void *)site_new_aligned,
		    (void *)site_new_nothrow, (void *)site_new_big, (void *)site_new_big_aligned,
		    (void *)site_maybe_huge);
	static void *e[200], *f[200];
	site_new_big(e, 200);
	site_new_big_aligned(f, 200);
	for (int i = 0; i < 200; i++) {
		if ((uintptr_t)f[i] % 256 != 0) {
			std::printf("misaligned %p\n", f[i]);
			bad = 1;
		}
		std::memset(e[i], i, 30000);
		std::memset(f[i], i, sizeof(BigAligned));
	}
	for (int i = 0; i < 200; i++) {
		const char *x = static_cast<const char *>(e[i]);
		if (x[0] != (char)i || x[29999] != (char)i)
			bad = 1;
		delete[] static_cast<char *>(e[i]);
		delete static_cast<BigAligned *>(f[i]); // sized, aligned delete
	}
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
	for (int i = 0; i < 3; i++)
		caught += huge_throws();
	// A new-handler runs when malloc fails (libstdc++'s loop, which the interposer
	// falls back to): once here, then it removes itself and new throws.
	std::set_new_handler(on_no_memory);
	caught += huge_throws();
	// After the throws, allocations must still be traced (the guard came back down).
	site_new(a, 1000);
	for (int i = 0; i < 1000; i++)
		delete[] static_cast<long *>(a[i]);
	for (int i = 0; i < 10; i++)
		delete[] site_maybe_huge(100);
	std::printf("want site_new 2000 64000\nwant site_new_obj 1000 %zu\n"
		    "want site_new_aligned 1000 192000\nwant site_new_nothrow 1000 77000\n"
		    "want site_new_big 200 6000000\nwant site_new_big_aligned 200 %zu\n"
		    "want site_maybe_huge 10 1000\ncaught %d\nnew-handler ran %d\n",
		    1000 * sizeof(std::string), 200 * sizeof(BigAligned), caught, handler_runs);
	return bad;
}
