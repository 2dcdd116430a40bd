// Declarations only: lets bench/kquant-ab compile kquant.h's N-API prototypes without Node's headers.
#pragma once
namespace Napi {
class Value;
class CallbackInfo;
}  // namespace Napi
