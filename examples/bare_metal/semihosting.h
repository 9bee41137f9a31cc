/* ARM semihosting operations used by the example (see ARM's "Semihosting for AArch32 and AArch64"). */
#ifndef SEMIHOSTING_H_
#define SEMIHOSTING_H_

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_READ 0x06
#define SYS_EXIT 0x18

int semihost(int op, const void *arg);

#endif /* SEMIHOSTING_H_ */
