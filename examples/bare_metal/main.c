/* Reads observations (records, little-endian) from the host file observations.bin over semihosting,
 * runs the generated policy on each and writes one line per observation:
 *
 *   <int8 outputs> | saturated <n> | action <argmax>      (discrete actions)
 *   <int8 outputs> | saturated <n>                        (continuous: dequantise the outputs with
 *                                                          <PREFIX>_OUTPUT_SCALE / _ZERO_POINT)
 *
 * POLICY_PREFIX / POLICY_UPPER / POLICY_HEADER name the generated files (build.sh sets them from
 * --prefix), so the same main serves any policy. Three builds, three record formats
 * (make_observations.py --format writes each):
 *   default                      float32 per feature; <prefix>_int8_raw quantises on the board
 *   -DINTEGER_ONLY -DINT16_INPUT int16 sensor counts per feature (observation = count * <PREFIX>_INT16_LSB);
 *                                <prefix>_int16_q quantises with integers only and counts the features
 *                                outside the calibrated range, as the float path does: no float at all
 *   -DINTEGER_ONLY               int8 per feature, already quantised on the host; <prefix>_int8_q only.
 *                                The host's quantiser clamped them, so the board cannot know which were
 *                                outside the range: the line says "saturated -". */
#include <stdint.h>

#include "semihosting.h"
#include POLICY_HEADER

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(POLICY_PREFIX, name)
#define OBS_SIZE CAT(POLICY_UPPER, _OBSERVATION_SIZE)
#define OUT_SIZE CAT(POLICY_UPPER, _OUTPUT_SIZE)
#define DISCRETE CAT(POLICY_UPPER, _DISCRETE)

static char *put_int(char *p, int v)
{
    char digits[12];
    int n = 0;
    unsigned u = (v < 0) ? (unsigned)(-(v + 1)) + 1u : (unsigned)v;
    if (v < 0) {
        *p++ = '-';
    }
    do {
        digits[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    while (n) {
        *p++ = digits[--n];
    }
    return p;
}

static char *put_text(char *p, const char *s)
{
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

int main(void)
{
#if defined(INTEGER_ONLY) && defined(INT16_INPUT)
    int16_t record[OBS_SIZE];
#elif defined(INTEGER_ONLY)
    int8_t record[OBS_SIZE];
#else
    float record[OBS_SIZE];
#endif
    static const char name[] = "observations.bin";
    int open_args[3], read_args[3], handle;
    char line[8 * OUT_SIZE + 48];

    open_args[0] = (int)(uintptr_t)name;
    open_args[1] = 1; /* "rb" */
    open_args[2] = (int)(sizeof(name) - 1);
    handle = semihost(SYS_OPEN, open_args);
    if (handle < 0) {
        semihost(SYS_WRITE0, "cannot open observations.bin\n");
        return 1;
    }
    for (;;) {
        int8_t out[OUT_SIZE];
        int i, saturated = 0;
        char *p = line;
        read_args[0] = handle;
        read_args[1] = (int)(uintptr_t)record;
        read_args[2] = (int)sizeof(record);
        if (semihost(SYS_READ, read_args) != 0) { /* returns the bytes NOT read: 0 = a whole record */
            break;
        }
#if defined(INTEGER_ONLY) && defined(INT16_INPUT)
        saturated = FN(int16_q)(record, out);
#elif defined(INTEGER_ONLY)
        FN(int8_q)(record, out);
        saturated = -1; /* not known here: see above */
#else
        saturated = FN(int8_raw)(record, out);
#endif
        for (i = 0; i < OUT_SIZE; ++i) {
            p = put_int(p, out[i]);
            *p++ = ' ';
        }
        p = put_text(p, "| saturated ");
        p = (saturated < 0) ? put_text(p, "-") : put_int(p, saturated);
#if DISCRETE
        p = put_text(p, " | action ");
        p = put_int(p, FN(argmax_q)(out));
#endif
        *p++ = '\n';
        *p = 0;
        semihost(SYS_WRITE0, line);
    }
    semihost(SYS_CLOSE, &handle);
    return 0;
}
