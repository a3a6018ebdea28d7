/* SPDX-License-Identifier: MIT */
/*
 * Call-frame-table unwinder with a rule cache (see unwind_cfi.h).
 *
 * The DWARF call-frame program of an FDE (after its CIE's initial instructions) is
 * run up to the address in question, tracking only what a walk needs on x86-64: the
 * canonical frame address (CFA), and the rules of the return address (DWARF register
 * 16) and of rbp (6). Everything else is decoded only to be stepped over.
 */
#define _GNU_SOURCE
#include "unwind_cfi.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/ucontext.h>

#include "../common/atomic.h"
#include "modules.h"
#include "unwind_fp.h"

#if defined(__x86_64__) && defined(DLFO_EH_SEGMENT_TYPE)
#define CFI_WALKER 1
#else
#define CFI_WALKER 0
#endif

enum {
	DW_RBP = 6,
	DW_RSP = 7,
	DW_RA = 16,
};

/* ---- the rule cache ----
 * One 64-bit word an entry: the return address (below 2^48, as every x86-64 user
 * address with 4-level paging) shifted up 16, over a 16-bit rule code. Zero is empty.
 * A word is written and read whole, so racing walkers see an old entry or a new one,
 * never a mix. Direct-mapped: a collision costs a recomputation, nothing more. */
#define CACHE_LOG 15 /* 32 Ki entries, 256 KiB of zero pages until used */
static _Atomic uint64_t cache[1u << CACHE_LOG];
/* An entry was stored since the last flush. A process that never walked (most
 * short-lived ones) has nothing to flush, and reading the table would map its 64
 * pages, a fault each (~1 ms at session start on the hosts measured). */
static _Atomic int cache_filled;

/* Codes: bit 15 the CFA base (rbp), bits 4..14 the CFA offset / 8, bits 0..3 the
 * slot k of the saved rbp at CFA - 8k (0: unchanged). The top six codes are taken
 * by the rules below, and the combinations they would spell are never cached. */
#define CODE_NONE	 0xFFFFu
#define CODE_OUTERMOST	 0xFFFEu
#define CODE_REALIGNED	 0xFFFDu /* cfa = *(rbp - 8), rbp saved at *rbp: gcc's realign */
#define CODE_SIGNAL	 0xFFFCu
#define CODE_UNSUPPORTED 0xFFFBu
#define CODE_UNCACHEABLE 0xFFFAu /* (never stored) the rule does not fit a code */

static inline size_t cache_index(uintptr_t ip)
{
	return (size_t)(((uint64_t)ip * 0x9E3779B97F4A7C15ull) >> (64 - CACHE_LOG));
}

static unsigned encode_rule(const struct cfi_rule *r)
{
	switch (r->kind) {
	case CFI_NONE:
		return CODE_NONE;
	case CFI_UNSUPPORTED:
		return CODE_UNSUPPORTED;
	case CFI_SIGNAL:
		return CODE_SIGNAL;
	case CFI_OUTERMOST:
		return CODE_OUTERMOST;
	case CFI_REALIGNED:
		return r->cfa_off == -8 ? CODE_REALIGNED : CODE_UNCACHEABLE;
	case CFI_RULE:
		break;
	}
	if (r->cfa_off < 8 || r->cfa_off % 8 || r->cfa_off / 8 > 2047 || r->rbp_off > 0 ||
	    r->rbp_off % 8 || -r->rbp_off / 8 > 15)
		return CODE_UNCACHEABLE;
	unsigned code = (r->cfa_rbp ? 0x8000u : 0) | (unsigned)(r->cfa_off / 8) << 4 |
			(unsigned)(-r->rbp_off / 8);
	return code >= CODE_UNCACHEABLE ? CODE_UNCACHEABLE : code;
}

static inline void decode_rule(unsigned code, struct cfi_rule *r)
{
	*r = (struct cfi_rule){.kind = CFI_RULE};
	if (code < CODE_UNCACHEABLE) { /* the common case first */
		r->cfa_rbp = code & 0x8000u;
		r->cfa_off = (int64_t)((code >> 4) & 0x7FFu) * 8;
		r->rbp_off = -(int64_t)(code & 0xFu) * 8;
	} else if (code == CODE_OUTERMOST) {
		r->kind = CFI_OUTERMOST;
	} else if (code == CODE_SIGNAL) {
		r->kind = CFI_SIGNAL;
	} else if (code == CODE_UNSUPPORTED) {
		r->kind = CFI_UNSUPPORTED;
	} else if (code == CODE_REALIGNED) {
		r->kind = CFI_REALIGNED;
		r->cfa_off = -8;
	} else {
		r->kind = CFI_NONE;
	}
}

void unwind_cfi_flush(void)
{
	if (!atomic_exchange_explicit(&cache_filled, 0, memory_order_relaxed))
		return;
	for (size_t i = 0; i < (1u << CACHE_LOG); i++)
		if (load_relaxed(&cache[i]))
			store_relaxed(&cache[i], 0);
}

#if CFI_WALKER

/* ---- reading the tables ---- */

enum {
	PE_OMIT = 0xff,
	PE_ABSPTR = 0x00,
	PE_ULEB128 = 0x01,
	PE_UDATA2 = 0x02,
	PE_UDATA4 = 0x03,
	PE_UDATA8 = 0x04,
	PE_SLEB128 = 0x09,
	PE_SDATA2 = 0x0a,
	PE_SDATA4 = 0x0b,
	PE_SDATA8 = 0x0c,
	PE_PCREL = 0x10,
	PE_DATAREL = 0x30,
	PE_INDIRECT = 0x80,
};

/* A cursor over [p, end): a read past end sets bad and yields zeros. */
struct rd {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t rd_bytes(struct rd *r, unsigned n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, n); /* little-endian */
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		unsigned b = (unsigned)rd_bytes(r, 1);
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80) || r->bad)
			return v;
	}
	r->bad = true;
	return 0;
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		unsigned b = (unsigned)rd_bytes(r, 1);
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80) || r->bad) {
			if (shift + 7 < 64 && (b & 0x40))
				v |= ~0ull << (shift + 7);
			return (int64_t)v;
		}
	}
	r->bad = true;
	return 0;
}

/* An encoded pointer; `datarel` is the base of DW_EH_PE_datarel (.eh_frame_hdr). */
static uintptr_t rd_encoded(struct rd *r, unsigned enc, uintptr_t datarel)
{
	if (enc == PE_OMIT)
		return 0;
	uintptr_t at = (uintptr_t)r->p;
	uint64_t v;
	switch (enc & 0x0f) {
	case PE_ABSPTR:
	case PE_UDATA8:
	case PE_SDATA8:
		v = rd_bytes(r, 8);
		break;
	case PE_ULEB128:
		v = rd_uleb(r);
		break;
	case PE_SLEB128:
		v = (uint64_t)rd_sleb(r);
		break;
	case PE_UDATA2:
		v = rd_bytes(r, 2);
		break;
	case PE_SDATA2:
		v = (uint64_t)(int64_t)(int16_t)rd_bytes(r, 2);
		break;
	case PE_UDATA4:
		v = rd_bytes(r, 4);
		break;
	case PE_SDATA4:
		v = (uint64_t)(int64_t)(int32_t)rd_bytes(r, 4);
		break;
	default:
		r->bad = true;
		return 0;
	}
	switch (enc & 0x70) {
	case 0:
		break;
	case PE_PCREL:
		v += at;
		break;
	case PE_DATAREL:
		v += datarel;
		break;
	default: /* textrel, funcrel, aligned: not used on x86-64 Linux */
		r->bad = true;
		return 0;
	}
	if (enc & PE_INDIRECT) { /* a pointer to the value, anywhere: not followed */
		r->bad = true;
		return 0;
	}
	return (uintptr_t)v;
}

/* A length-prefixed entry of .eh_frame at p: its body [*body, return). */
static const unsigned char *entry_span(const unsigned char *p, const unsigned char **body)
{
	uint32_t len32;
	memcpy(&len32, p, 4);
	if (len32 == 0xffffffffu) {
		uint64_t len64;
		memcpy(&len64, p + 4, 8);
		*body = p + 12;
		return *body + len64;
	}
	*body = p + 4;
	return *body + len32;
}

/* .eh_frame_hdr's sorted table: the FDE whose range may hold pc, or NULL. */
static const unsigned char *find_fde(const unsigned char *hdr, uintptr_t pc)
{
	if (hdr[0] != 1)
		return NULL;
	unsigned frame_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
	struct rd r = {hdr + 4, hdr + 4 + 2 * 16, false}; /* two encoded values at most */
	(void)rd_encoded(&r, frame_enc, (uintptr_t)hdr);
	uint64_t count = rd_encoded(&r, count_enc, (uintptr_t)hdr);
	if (r.bad || table_enc != (PE_DATAREL | PE_SDATA4) || count == 0)
		return NULL; /* the only table layout the linkers write */
	const int32_t *table = (const int32_t *)(const void *)r.p;
	uint64_t lo = 0, hi = count; /* the last entry whose start <= pc */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)hdr + (intptr_t)table[2 * mid] <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if ((uintptr_t)hdr + (intptr_t)table[2 * lo] > pc)
		return NULL;
	return hdr + (intptr_t)table[2 * lo + 1];
}

/* A register rule, of the two registers followed. */
enum reg_kind { REG_SAME, REG_UNDEFINED, REG_OFFSET, REG_AT_RBP, REG_OTHER };
struct reg_rule {
	enum reg_kind kind;
	int64_t off;
};

struct cfa_state {
	enum { CFA_REG, CFA_DEREF_RBP, CFA_OTHER } kind;
	unsigned reg;
	int64_t off;
	struct reg_rule rbp, ra;
};

struct cie {
	uint64_t code_align;
	int64_t data_align;
	unsigned fde_enc;
	bool has_z;
	bool signal;	/* 'S': the FDE covers a signal trampoline */
	struct rd init; /* its initial instructions */
};

static bool parse_cie(const unsigned char *p, struct cie *c)
{
	const unsigned char *body, *end = entry_span(p, &body);
	struct rd r = {body, end, false};
	if (rd_bytes(&r, 4) != 0)
		return false; /* not a CIE */
	unsigned version = (unsigned)rd_bytes(&r, 1);
	const char *aug = (const char *)r.p;
	size_t auglen = strnlen(aug, (size_t)(end - r.p));
	r.p += auglen + 1;
	if (r.p > end || (version != 1 && version != 3 && version != 4))
		return false;
	if (version == 4)
		r.p += 2; /* address size, segment size */
	if (aug[0] == 'e' && aug[1] == 'h')
		return false; /* pre-2000 GCC */
	c->code_align = rd_uleb(&r);
	c->data_align = rd_sleb(&r);
	uint64_t ra = version == 1 ? rd_bytes(&r, 1) : rd_uleb(&r);
	if (ra != DW_RA)
		return false;
	c->fde_enc = PE_ABSPTR;
	c->signal = false;
	c->has_z = aug[0] == 'z';
	if (c->has_z) {
		uint64_t len = rd_uleb(&r);
		const unsigned char *data_end = r.p + len;
		for (const char *a = aug + 1; *a && !r.bad; a++) {
			if (*a == 'R') {
				c->fde_enc = (unsigned)rd_bytes(&r, 1);
			} else if (*a == 'L') {
				(void)rd_bytes(&r, 1);
			} else if (*a == 'P') {
				/* The personality routine: only stepped over, so its
				 * (indirect) pointer is read for its size, not followed. */
				unsigned enc = (unsigned)rd_bytes(&r, 1);
				(void)rd_encoded(&r, enc & ~(unsigned)PE_INDIRECT, 0);
			} else if (*a == 'S') {
				c->signal = true;
			} else {
				break; /* the rest is skipped by its length */
			}
		}
		if (data_end > end)
			return false;
		r.p = data_end;
	} else if (aug[0]) {
		return false; /* an augmentation whose data cannot be skipped */
	}
	c->init = r;
	return !r.bad;
}

static void set_reg(struct cfa_state *s, uint64_t reg, enum reg_kind kind, int64_t off)
{
	struct reg_rule *rr = reg == DW_RBP ? &s->rbp : reg == DW_RA ? &s->ra : NULL;
	if (rr) {
		rr->kind = kind;
		rr->off = off;
	}
}

#define STATE_STACK 8

/*
 * Run the program in r from location loc until past pc. `initial` is the state after
 * the CIE's instructions (for DW_CFA_restore); NULL while running those.
 */
static bool run_cfa(struct rd *r, const struct cie *c, uintptr_t loc, uintptr_t pc,
		    struct cfa_state *s, const struct cfa_state *initial)
{
	struct cfa_state saved[STATE_STACK];
	unsigned depth = 0;
	while (r->p < r->end && !r->bad) {
		unsigned op = (unsigned)rd_bytes(r, 1);
		uint64_t reg, delta = 0;
		switch (op & 0xc0) {
		case 0x40: /* advance_loc */
			delta = op & 0x3f;
			goto advance;
		case 0x80: /* offset */
			set_reg(s, op & 0x3f, REG_OFFSET, (int64_t)rd_uleb(r) * c->data_align);
			continue;
		case 0xc0: /* restore */
			reg = op & 0x3f;
			goto restore;
		}
		switch (op) {
		case 0x00: /* nop */
			continue;
		case 0x01: /* set_loc */
			loc = rd_encoded(r, c->fde_enc, 0);
			if (loc > pc)
				return !r->bad;
			continue;
		case 0x02:
			delta = rd_bytes(r, 1);
			goto advance;
		case 0x03:
			delta = rd_bytes(r, 2);
			goto advance;
		case 0x04:
			delta = rd_bytes(r, 4);
			goto advance;
		case 0x05: /* offset_extended */
			reg = rd_uleb(r);
			set_reg(s, reg, REG_OFFSET, (int64_t)rd_uleb(r) * c->data_align);
			continue;
		case 0x06: /* restore_extended */
			reg = rd_uleb(r);
			goto restore;
		case 0x07: /* undefined */
			set_reg(s, rd_uleb(r), REG_UNDEFINED, 0);
			continue;
		case 0x08: /* same_value */
			set_reg(s, rd_uleb(r), REG_SAME, 0);
			continue;
		case 0x09: /* register */
			reg = rd_uleb(r);
			(void)rd_uleb(r);
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		case 0x0a: /* remember_state */
			if (depth == STATE_STACK)
				return false;
			saved[depth++] = *s;
			continue;
		case 0x0b: /* restore_state */
			if (depth == 0)
				return false;
			*s = saved[--depth];
			continue;
		case 0x0c: /* def_cfa */
			s->kind = CFA_REG;
			s->reg = (unsigned)rd_uleb(r);
			s->off = (int64_t)rd_uleb(r);
			continue;
		case 0x0d: /* def_cfa_register */
			s->kind = CFA_REG;
			s->reg = (unsigned)rd_uleb(r);
			continue;
		case 0x0e: /* def_cfa_offset */
			s->off = (int64_t)rd_uleb(r);
			continue;
		case 0x0f: { /* def_cfa_expression */
			uint64_t len = rd_uleb(r);
			const unsigned char *e = r->p;
			if (len > (uint64_t)(r->end - r->p))
				return false;
			r->p += len;
			/* gcc's realigned frame: DW_OP_breg6 (rbp) OFF; DW_OP_deref. */
			struct rd x = {e, e + len, false};
			s->kind = CFA_OTHER;
			if (len >= 3 && rd_bytes(&x, 1) == 0x76) {
				int64_t off = rd_sleb(&x);
				if (!x.bad && x.p + 1 == x.end && *x.p == 0x06) {
					s->kind = CFA_DEREF_RBP;
					s->off = off;
				}
			}
			continue;
		}
		case 0x10: { /* expression */
			reg = rd_uleb(r);
			uint64_t len = rd_uleb(r);
			const unsigned char *e = r->p;
			if (len > (uint64_t)(r->end - r->p))
				return false;
			r->p += len;
			/* The realigned frame's rbp: DW_OP_breg6 (rbp) OFF, an address. */
			struct rd x = {e, e + len, false};
			int64_t off = 0;
			bool at_rbp = len >= 2 && rd_bytes(&x, 1) == 0x76 &&
				      ((off = rd_sleb(&x)), !x.bad && x.p == x.end);
			set_reg(s, reg, at_rbp ? REG_AT_RBP : REG_OTHER, off);
			continue;
		}
		case 0x11: /* offset_extended_sf */
			reg = rd_uleb(r);
			set_reg(s, reg, REG_OFFSET, rd_sleb(r) * c->data_align);
			continue;
		case 0x12: /* def_cfa_sf */
			s->kind = CFA_REG;
			s->reg = (unsigned)rd_uleb(r);
			s->off = rd_sleb(r) * c->data_align;
			continue;
		case 0x13: /* def_cfa_offset_sf */
			s->off = rd_sleb(r) * c->data_align;
			continue;
		case 0x14: /* val_offset */
			reg = rd_uleb(r);
			(void)rd_uleb(r);
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		case 0x15: /* val_offset_sf */
			reg = rd_uleb(r);
			(void)rd_sleb(r);
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		case 0x16: { /* val_expression */
			reg = rd_uleb(r);
			uint64_t len = rd_uleb(r);
			if (len > (uint64_t)(r->end - r->p))
				return false;
			r->p += len;
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		}
		case 0x2e: /* GNU_args_size */
			(void)rd_uleb(r);
			continue;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = rd_uleb(r);
			set_reg(s, reg, REG_OFFSET, -(int64_t)rd_uleb(r) * c->data_align);
			continue;
		default:
			return false; /* an opcode we cannot even step over */
		}
	advance:
		loc += delta * c->code_align;
		if (loc > pc)
			return !r->bad;
		continue;
	restore:
		if (!initial)
			return false;
		if (reg == DW_RBP)
			s->rbp = initial->rbp;
		else if (reg == DW_RA)
			s->ra = initial->ra;
		continue;
	}
	return !r->bad;
}

void unwind_cfi_rule(uintptr_t pc, struct cfi_rule *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = CFI_NONE;
	struct dl_find_object obj;
	if (_dl_find_object((void *)pc, &obj) != 0 || !obj.dlfo_eh_frame)
		return;
	const unsigned char *fde = find_fde(obj.dlfo_eh_frame, pc);
	if (!fde)
		return;
	const unsigned char *body, *end = entry_span(fde, &body);
	uint32_t cie_off;
	memcpy(&cie_off, body, 4);
	struct cie c;
	if (cie_off == 0)
		return; /* the table pointed at a CIE */
	out->kind = CFI_UNSUPPORTED;
	if (!parse_cie(body - cie_off, &c))
		return;
	struct rd r = {body + 4, end, false};
	uintptr_t start = rd_encoded(&r, c.fde_enc, 0);
	uintptr_t range = rd_encoded(&r, c.fde_enc & 0x0f, 0);
	if (r.bad || pc < start || pc - start >= range) {
		out->kind = CFI_NONE;
		return;
	}
	if (c.signal) {
		out->kind = CFI_SIGNAL;
		return;
	}
	if (c.has_z) {
		uint64_t len = rd_uleb(&r);
		if (len > (uint64_t)(r.end - r.p))
			return;
		r.p += len;
	}
	struct cfa_state s = {.kind = CFA_OTHER, .rbp = {REG_SAME, 0}, .ra = {REG_SAME, 0}};
	struct rd init = c.init;
	if (!run_cfa(&init, &c, start, ~(uintptr_t)0, &s, NULL))
		return;
	struct cfa_state initial = s;
	if (!run_cfa(&r, &c, start, pc, &s, &initial))
		return;
	if (s.ra.kind == REG_UNDEFINED) {
		out->kind = CFI_OUTERMOST;
		return;
	}
	if (s.ra.kind != REG_OFFSET || s.ra.off != -8)
		return;
	if (s.kind == CFA_DEREF_RBP) {
		if (s.rbp.kind != REG_AT_RBP || s.rbp.off != 0)
			return;
		out->kind = CFI_REALIGNED;
		out->cfa_off = s.off;
		return;
	}
	if (s.kind != CFA_REG || (s.reg != DW_RSP && s.reg != DW_RBP))
		return;
	if (s.rbp.kind == REG_OFFSET)
		out->rbp_off = s.rbp.off;
	else if (s.rbp.kind != REG_SAME)
		return;
	out->kind = CFI_RULE;
	out->cfa_rbp = s.reg == DW_RBP;
	out->cfa_off = s.off;
}

/* The rule for return address ip, from the cache or worked out and cached. */
static void rule_for(uintptr_t ip, struct cfi_rule *r)
{
	size_t i = cache_index(ip);
	uint64_t e = load_relaxed(&cache[i]);
	if (ip < (1ull << 48) && e && e >> 16 == ip) {
		decode_rule((unsigned)(e & 0xFFFF), r);
		return;
	}
	unwind_cfi_rule(ip - 1, r); /* inside the call instruction */
	unsigned code = encode_rule(r);
	if (code != CODE_UNCACHEABLE && ip < (1ull << 48)) {
		store_relaxed(&cache[i], (uint64_t)ip << 16 | code);
		store_relaxed(&cache_filled, 1);
	}
}

bool unwind_cfi_available(void)
{
	static _Atomic int known; /* 0 unknown, 1 yes, 2 no */
	int k = load_relaxed(&known);
	if (k == 0) {
		struct cfi_rule r;
		unwind_cfi_rule((uintptr_t)&unwind_cfi_available + 1, &r);
		k = r.kind == CFI_RULE ? 1 : 2;
		store_relaxed(&known, k);
	}
	return k == 1;
}

static inline bool in_stack(uintptr_t a, uintptr_t lo, uintptr_t hi)
{
	return a >= lo && a <= hi - sizeof(uintptr_t) && !(a & (sizeof(uintptr_t) - 1));
}

unsigned unwind_cfi(uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t lo, uintptr_t hi,
		    uintptr_t *out, unsigned max, bool *truncated, bool *broken)
{
	unsigned n = 0;
	size_t hint = 0;
	*truncated = false;
	*broken = true;
	if (!in_stack(sp, lo, hi))
		return 0;
	/* ip is a return address (the instruction after a call) but past a signal
	 * frame, where it is the interrupted instruction itself: ip + 1 then stands
	 * for it, as the return address it is not. */
	while (ip >= UNWIND_MIN_CODE_ADDR) {
		if (n == max) {
			*truncated = true;
			*broken = false;
			break;
		}
		out[n++] = ip;
		uint64_t e = load_relaxed(&cache[cache_index(ip)]);
		unsigned code = (unsigned)(e & 0xFFFF);
		if (__builtin_expect(e >> 16 == ip && code < CODE_UNCACHEABLE, 1)) {
			/* The common case straight from the code (decode_rule's CFI_RULE,
			 * and the checks below in fewer compares): the return address at
			 * cfa - 8 in [sp, hi - 8], aligned; rbp's slot cfa - 8k (k >= 1)
			 * then needs only to be at or above sp. */
			uintptr_t cfa = ((code & 0x8000u) ? bp : sp) + ((code >> 1) & 0x3FF8u);
			unsigned k = code & 0xFu;
			if (cfa < sp + sizeof(uintptr_t) || cfa > hi ||
			    (cfa & (sizeof(uintptr_t) - 1)))
				return n;
			if (k) {
				uintptr_t a = cfa - k * sizeof(uintptr_t);
				if (a < sp)
					return n;
				bp = *(const uintptr_t *)a;
			}
			ip = *(const uintptr_t *)(cfa - sizeof(uintptr_t));
			sp = cfa;
			if (ip == 0) {
				*broken = false;
				return n;
			}
			continue;
		}
		struct cfi_rule r;
		if (e >> 16 == ip)
			decode_rule(code, &r);
		else
			rule_for(ip, &r);
		uintptr_t cfa, nbp = bp;
		switch (r.kind) {
		case CFI_RULE:
			cfa = (r.cfa_rbp ? bp : sp) + (uintptr_t)r.cfa_off;
			if (r.rbp_off) {
				if (!in_stack(cfa + (uintptr_t)r.rbp_off, sp, hi))
					return n;
				nbp = *(const uintptr_t *)(cfa + (uintptr_t)r.rbp_off);
			}
			break;
		case CFI_OUTERMOST:
			*broken = false;
			return n;
		case CFI_SIGNAL: {
			/* The kernel's frame: the ucontext right where the handler's
			 * return address (the trampoline) was popped. */
			if (sp > hi - sizeof(ucontext_t) || !in_stack(sp, sp, hi))
				return n;
			const greg_t *g = ((const ucontext_t *)sp)->uc_mcontext.gregs;
			uintptr_t nsp = (uintptr_t)g[REG_RSP], nip = (uintptr_t)g[REG_RIP];
			if (nsp <= sp || !in_stack(nsp, sp, hi) || nip < UNWIND_MIN_CODE_ADDR)
				return n;
			bp = (uintptr_t)g[REG_RBP];
			sp = nsp;
			ip = nip + 1;
			continue;
		}
		case CFI_REALIGNED:
			if (!in_stack(bp + (uintptr_t)r.cfa_off, sp, hi) || !in_stack(bp, sp, hi))
				return n;
			cfa = *(const uintptr_t *)(bp + (uintptr_t)r.cfa_off);
			nbp = *(const uintptr_t *)bp;
			break;
		case CFI_UNSUPPORTED:
			return n; /* a rule we cannot follow: no guessing past it */
		case CFI_NONE:
		default:
			/* No table for this code (generated code, say): its frame pointer,
			 * if it has one that leads to code. */
			if (!in_stack(bp, sp, hi) || bp > hi - 2 * sizeof(uintptr_t))
				return n;
			cfa = bp + 2 * sizeof(uintptr_t);
			nbp = *(const uintptr_t *)bp;
			if (!modules_is_code(*(const uintptr_t *)(cfa - 8), &hint))
				return n;
			break;
		}
		/* The return address sits just below the CFA, above this frame. */
		if (cfa < sp + sizeof(uintptr_t) || !in_stack(cfa - sizeof(uintptr_t), sp, hi))
			return n;
		ip = *(const uintptr_t *)(cfa - sizeof(uintptr_t));
		sp = cfa;
		bp = nbp;
		if (ip == 0) { /* a zeroed return address also ends a stack */
			*broken = false;
			return n;
		}
	}
	return n;
}

#else /* !CFI_WALKER */

void unwind_cfi_rule(uintptr_t pc, struct cfi_rule *r)
{
	(void)pc;
	memset(r, 0, sizeof(*r));
	r->kind = CFI_NONE;
}

bool unwind_cfi_available(void)
{
	return false;
}

unsigned unwind_cfi(uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t lo, uintptr_t hi,
		    uintptr_t *out, unsigned max, bool *truncated, bool *broken)
{
	(void)ip, (void)sp, (void)bp, (void)lo, (void)hi, (void)out, (void)max;
	*truncated = false;
	*broken = true;
	return 0;
}

#endif /* CFI_WALKER */
