package runwarm;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Moves user stdio off the protocol fds before any user code runs (PROTOCOL.md section 5).
 *
 * <p>Java has no public dup2 (and the Foreign Function API is an incubator module in Java 17,
 * which the fixed launch command does not enable). Without dup2, a child process started with
 * {@code inheritIO()} and any write to {@code FileDescriptor.out} would land on the protocol
 * channel. So the shim calls the JDK's own dup/dup2 natives in {@code sun.nio.ch.InheritedChannel}
 * (the code behind {@code System.inheritedChannel()}), reached through the JDK's trusted method
 * handle lookup. If a future JDK closes that door, the shim falls back to what plain Java can do:
 * {@code System.out} goes to the user stdout fd, but inherited stdout and raw fd 1 writes are not
 * caught; a stderr note says so.
 */
final class Stdio {
    /** Protocol input: a private duplicate of fd 0 (fd 0 itself becomes /dev/null). */
    final InputStream protocolIn;
    /** Protocol output: a private duplicate of fd 1 (fd 1 itself becomes user stdout). */
    final OutputStream protocolOut;

    private Stdio(InputStream protocolIn, OutputStream protocolOut) {
        this.protocolIn = protocolIn;
        this.protocolOut = protocolOut;
    }

    static Stdio takeOver() {
        // Unset, a headless environment makes Java 17 encode stdio in ASCII; JSON and @@ lines
        // are UTF-8.
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true,
                StandardCharsets.UTF_8));
        String named = System.getenv("RUNWARM_STDOUT_FD");
        Stdio stdio;
        try {
            stdio = withDup2(named);
        } catch (Throwable e) { // LinkageError, IllegalAccessException, ...: the fallback decides
            stdio = withoutDup2(named, e);
        }
        System.setIn(InputStream.nullInputStream());
        return stdio;
    }

    private static int parseFd(String named) {
        try {
            return named == null ? -1 : Integer.parseInt(named.trim());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static void noteBadFd(String named) {
        if (named != null) {
            System.err.println("runwarm: RUNWARM_STDOUT_FD=" + named
                    + " is not an open fd; user stdout goes to stderr");
        }
    }

    private static PrintStream userStdout(OutputStream sink) {
        // autoflush: flushed at each println, like a line-buffered terminal.
        return new PrintStream(new BufferedOutputStream(sink, 8192), true, StandardCharsets.UTF_8);
    }

    private static Stdio withDup2(String named) throws Throwable {
        Posix posix = Posix.get();
        // Everything that can fail happens before the first dup2, so a failure leaves the fds as
        // they were for the fallback.
        int in = posix.dup(0);
        int out = posix.dup(1);
        FileInputStream protocolIn = new FileInputStream(posix.descriptor(in));
        FileOutputStream protocolOut = new FileOutputStream(posix.descriptor(out));
        int userFd = parseFd(named);
        if (userFd < 0 || !posix.isOpen(userFd)) {
            noteBadFd(named);
            userFd = 2;
        }
        posix.dup2(userFd, 1);
        // From here on fd 1 is user stdout, so nothing may fall back to the variant without dup2.
        try (FileInputStream devnull = new FileInputStream("/dev/null")) {
            posix.dup2(posix.fdOf(devnull.getFD()), 0);
        } catch (Throwable e) {
            System.err.println("runwarm: cannot point fd 0 at /dev/null (" + e
                    + "); a child process that inherits stdin can read protocol input");
        }
        System.setOut(userStdout(new FileOutputStream(FileDescriptor.out)));
        return new Stdio(protocolIn, protocolOut);
    }

    private static Stdio withoutDup2(String named, Throwable why) {
        System.err.println("runwarm: cannot move fd 1 (" + why + "); System.out goes to the user"
                + " stdout fd, but child processes that inherit stdout and raw writes to fd 1 would"
                + " corrupt the protocol");
        OutputStream user = null;
        int userFd = parseFd(named);
        if (userFd >= 0) {
            try {
                user = new FileOutputStream("/proc/self/fd/" + userFd);
            } catch (java.io.IOException | SecurityException e) {
                user = null;
            }
        }
        if (user == null) {
            noteBadFd(named);
            user = new FileOutputStream(FileDescriptor.err);
        }
        System.setOut(userStdout(user));
        return new Stdio(new FileInputStream(FileDescriptor.in),
                new FileOutputStream(FileDescriptor.out));
    }

    /**
     * The process environment as a mutable map: what {@code System.getenv} and new child
     * processes see. Java has no setenv; this writes to the JDK's own copy of the environment.
     * Null if that is not reachable in this JDK.
     */
    @SuppressWarnings("unchecked")
    static Map<String, String> mutableEnvironment() {
        try {
            Map<String, String> view = System.getenv();
            // Collections.unmodifiableMap over ProcessEnvironment.StringEnvironment, which is
            // backed by the map that ProcessBuilder copies for children.
            MethodHandle inner = Posix.lookup().findGetter(view.getClass(), "m", Map.class);
            return (Map<String, String>) inner.invoke(view);
        } catch (Throwable e) {
            System.err.println("runwarm: cannot change the environment of this JVM (" + e + ")");
            return null;
        }
    }

    /** The JDK internals the shim needs, resolved once. */
    static final class Posix {
        private static Posix instance;
        private static MethodHandles.Lookup trusted;

        private final MethodHandle dup;
        private final MethodHandle dup2;
        private final MethodHandle close;
        private final MethodHandle newDescriptor;
        private final MethodHandle descriptorFd;

        private Posix(MethodHandles.Lookup lookup) throws ReflectiveOperationException {
            Class<?> natives = Class.forName("sun.nio.ch.InheritedChannel");
            MethodType intToInt = MethodType.methodType(int.class, int.class);
            dup = lookup.findStatic(natives, "dup", intToInt);
            dup2 = lookup.findStatic(natives, "dup2",
                    MethodType.methodType(void.class, int.class, int.class));
            close = lookup.findStatic(natives, "close0", MethodType.methodType(void.class, int.class));
            newDescriptor = lookup.findConstructor(FileDescriptor.class,
                    MethodType.methodType(void.class, int.class));
            descriptorFd = lookup.findGetter(FileDescriptor.class, "fd", int.class);
        }

        static synchronized Posix get() throws Throwable {
            if (instance == null) {
                instance = new Posix(lookup());
            }
            return instance;
        }

        /**
         * The lookup with full privileges that the JDK uses internally. Strong encapsulation
         * (Java 16+) forbids setAccessible on java.base internals, but sun.misc.Unsafe, which
         * module jdk.unsupported still exports, can read the static field that holds it.
         */
        static synchronized MethodHandles.Lookup lookup() throws Throwable {
            if (trusted == null) {
                // Named by string, not imported: javac warns about every use of sun.misc.Unsafe,
                // and those warnings would show in every user's build. Method handles, not
                // Method.invoke: reflective calls into the JDK parse annotations and spin proxy
                // classes, about 10 ms more.
                Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
                Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
                theUnsafe.setAccessible(true);
                Object unsafe = theUnsafe.get(null);
                MethodHandles.Lookup lookup = MethodHandles.lookup();
                MethodHandle base = lookup.findVirtual(unsafeClass, "staticFieldBase",
                        MethodType.methodType(Object.class, Field.class)).bindTo(unsafe);
                MethodHandle offset = lookup.findVirtual(unsafeClass, "staticFieldOffset",
                        MethodType.methodType(long.class, Field.class)).bindTo(unsafe);
                MethodHandle get = lookup.findVirtual(unsafeClass, "getObject",
                        MethodType.methodType(Object.class, Object.class, long.class)).bindTo(unsafe);
                Field field = MethodHandles.Lookup.class.getDeclaredField("IMPL_LOOKUP");
                Object holder = (Object) base.invokeExact(field);
                long at = (long) offset.invokeExact(field);
                trusted = (MethodHandles.Lookup) (Object) get.invokeExact(holder, at);
            }
            return trusted;
        }

        int dup(int fd) throws Throwable {
            return (int) dup.invokeExact(fd);
        }

        void dup2(int from, int to) throws Throwable {
            dup2.invokeExact(from, to);
        }

        boolean isOpen(int fd) {
            try {
                int copy = dup(fd);
                close.invokeExact(copy);
                return true;
            } catch (Throwable e) {
                return false;
            }
        }

        FileDescriptor descriptor(int fd) throws Throwable {
            return (FileDescriptor) newDescriptor.invokeExact(fd);
        }

        int fdOf(FileDescriptor descriptor) throws Throwable {
            return (int) descriptorFd.invokeExact(descriptor);
        }
    }
}
