// CKVM has no logic; this file exists because SwiftPM wants one source per C target.
#include "ckvm.h"
