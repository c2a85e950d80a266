/* The first process of a forked execution environment (pid 1 of its PID namespace), exec'd by
 * _lamina_fork.py once it has forked the runtime, so that each environment keeps a ~100 KB
 * process instead of a copy-on-write Python interpreter (about 1.7 MB PSS) just to wait.
 *
 * Usage: _lamina_reaper CHANNEL_FD RUNTIME_PID
 * Reaps every child (orphans of the function's processes end up here), and when the runtime ends
 * sends "exit <code>" on the channel (code as Python's os.waitstatus_to_exitcode: the exit
 * status, or minus the signal number), then exits, which ends the PID namespace.
 *
 * Built by scripts/build-reaper where a C compiler exists; without it the Python keeper in
 * _lamina_fork.py does the same job. No dependencies beyond libc.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        return 2;
    }
    int chan = atoi(argv[1]);
    pid_t runtime = (pid_t)atoi(argv[2]);
    int status = 0;
    for (;;) {
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1); /* no child left: the runtime was never ours */
        }
        if (pid == runtime) {
            break;
        }
    }
    int code = 1;
    if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        code = -WTERMSIG(status);
    }
    char msg[32];
    int len = snprintf(msg, sizeof msg, "exit %d", code);
    while (send(chan, msg, (size_t)len, 0) < 0 && errno == EINTR) {
    }
    _exit(0);
}
