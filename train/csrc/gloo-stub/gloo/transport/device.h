#pragma once
namespace gloo { namespace transport { class Device; class UnboundBuffer; } }
