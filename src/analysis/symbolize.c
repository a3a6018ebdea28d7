/* SPDX-License-Identifier: MIT */
/* Placeholder: being written (symbolize.h is the contract). */
#include "symbolize.h"
