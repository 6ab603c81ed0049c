#pragma once
// Stand-in for gloo's header: ProcessGroupGloo.hpp only needs these names.
#include "context.h"
namespace gloo { class Algorithm; }
