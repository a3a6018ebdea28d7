/* SPDX-License-Identifier: MIT */
/* Placeholder: being written (pprof.h is the contract). */
#include "pprof.h"
#include "profile.pb-c.h"
