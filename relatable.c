/*
** relatable.c: the public API layer. It owns the handles users hold and
** turns calls into work for schema/ and blocks/. It stays thin: no storage
** logic lives here.
**
** Today it carries the result-code functions; the relational API joins it
** with the relational core.
*/
#include "relatable.h"

const char *rl_strerror(int code)
{
    switch (code) {
#define RL__MSG_ROW(name, num, msg) case num: return msg;
        RL_ERROR_TABLE(RL__MSG_ROW)
#undef RL__MSG_ROW
    default:
        return "unknown error code";
    }
}

const char *rl_errname(int code)
{
    switch (code) {
#define RL__NAME_ROW(name, num, msg) case num: return #name;
        RL_ERROR_TABLE(RL__NAME_ROW)
#undef RL__NAME_ROW
    default:
        return "RL_UNKNOWN";
    }
}

const char *rl_version(void)
{
    return RL_VERSION_STRING;
}
