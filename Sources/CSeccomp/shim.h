// libseccomp's header. Its actions are plain integer macros, which Swift imports; the one
// function-like macro it needs, SCMP_ACT_ERRNO, is rebuilt here.
#ifndef APUS_CSECCOMP_SHIM_H
#define APUS_CSECCOMP_SHIM_H
#include <seccomp.h>

static inline uint32_t apus_scmp_act_errno(uint16_t error) { return SCMP_ACT_ERRNO(error); }
#endif
