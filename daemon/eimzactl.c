/* eimzactl: the control tool (commands follow). */
#include <stdio.h>
#include <sysexits.h>

int main(void)
{
	fprintf(stderr, "usage: eimzactl COMMAND ...\n");
	return EX_USAGE;
}
