package runwarm;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The protocol output (the executor's private copy of fd 1). Each message is one line, written
 * with one write and flushed under a lock, so that a log call from a user thread cannot
 * interleave with a response.
 */
final class Channel {
    private final OutputStream out;

    Channel(OutputStream out) {
        this.out = out;
    }

    /** Sends one message; {@code json} is a complete JSON object, to which this adds the newline. */
    void send(StringBuilder json) {
        byte[] line = json.append('\n').toString().getBytes(StandardCharsets.UTF_8);
        synchronized (this) {
            try {
                out.write(line);
                out.flush();
            } catch (IOException e) {
                // The supervisor closed its end, so nobody is left to answer. Halting rather than
                // System.exit: this may run on a user thread, and shutdown hooks that log here
                // would wait for this lock forever.
                System.err.println("runwarm: the protocol channel is closed (" + e.getMessage()
                        + "); exiting");
                System.err.flush();
                Runtime.getRuntime().halt(1);
            }
        }
    }

    /** Writes stdout and stderr through, so that user output precedes the next message. */
    static void flushUserOutput() {
        System.out.flush();
        System.err.flush();
    }
}
