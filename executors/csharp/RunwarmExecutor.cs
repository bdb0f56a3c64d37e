// runwarm executor shim for C# on Mono (protocol v1, handler mode). mscorlib and System only.
//
// Build:  mcs -out:runwarm.exe executors/csharp/*.cs
//         mcs -target:library -r:runwarm.exe -out:script.dll <the script's .cs files>
// Run:    mono runwarm.exe script.dll
//
// Speaks the JSON Lines protocol of protocol/PROTOCOL.md with the runwarm supervisor: reads
// `init`, loads the script's compiled assembly once, then calls its handler once per `request`,
// strictly one message at a time.
//
// File descriptors: the protocol arrives on fd 0 and leaves on fd 1, user stdout belongs on the
// fd named in RUNWARM_STDOUT_FD (3), user stderr on fd 2. Before any user code runs, the shim
// keeps private close-on-exec duplicates of fds 0 and 1 for the protocol (libc through P/Invoke,
// because Mono.Posix is not part of Debian's mono-runtime), then dup2()s the user stdout pipe onto
// fd 1 and /dev/null onto fd 0. Console.Out, Console.OpenStandardOutput() and child processes
// therefore all write user output where it belongs, and nothing the script does can read or forge
// protocol bytes.

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Tasks;

namespace Runwarm
{
    internal static class Native
    {
        private const int F_DUPFD_CLOEXEC = 1030;
        private const int O_RDONLY = 0;
        public const int EINTR = 4;
        public const int EAGAIN = 11;

        // fcntl and open are variadic in C; declaring the fixed arguments passed is ABI-compatible
        // on Linux.
        [DllImport("libc", SetLastError = true)]
        private static extern int fcntl(int fd, int cmd, int arg);

        [DllImport("libc", SetLastError = true)]
        private static extern int dup2(int oldfd, int newfd);

        [DllImport("libc", SetLastError = true)]
        private static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int close(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr read(int fd, byte[] buf, UIntPtr count);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr write(int fd, IntPtr buf, UIntPtr count);

        [DllImport("libc")]
        public static extern int getpid();

        public static int DupCloexec(int fd)
        {
            int copy = fcntl(fd, F_DUPFD_CLOEXEC, 10);
            if (copy < 0)
                throw new IOException("fcntl(F_DUPFD_CLOEXEC) on fd " + fd + " failed, errno " + Marshal.GetLastWin32Error());
            return copy;
        }

        public static bool IsOpen(int fd)
        {
            int probe = fcntl(fd, F_DUPFD_CLOEXEC, 10);
            if (probe < 0)
                return false;
            close(probe);
            return true;
        }

        public static void Dup2(int from, int to)
        {
            if (dup2(from, to) < 0)
                throw new IOException("dup2(" + from + ", " + to + ") failed, errno " + Marshal.GetLastWin32Error());
        }

        public static void DevNullOnto(int fd)
        {
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull < 0)
                throw new IOException("open(/dev/null) failed, errno " + Marshal.GetLastWin32Error());
            Dup2(devnull, fd);
            close(devnull);
        }
    }

    /// <summary>
    /// The protocol fds: lines in, messages out. Output is written whole under a lock so that a
    /// log call from a user thread cannot interleave with a response.
    /// </summary>
    internal sealed class Channel
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);
        private readonly int _in;
        private readonly int _out;
        private readonly object _lock = new object();
        private readonly byte[] _chunk = new byte[65536];
        private byte[] _pending = new byte[65536];
        private int _start;
        private int _end;
        private bool _eof;

        public Channel(int inFd, int outFd)
        {
            _in = inFd;
            _out = outFd;
        }

        /// <summary>The next line without its "\n", or null at EOF.</summary>
        public string ReadLine()
        {
            int scanned = _start;
            while (true)
            {
                int nl = Array.IndexOf(_pending, (byte)'\n', scanned, _end - scanned);
                if (nl >= 0)
                {
                    string line = Utf8.GetString(_pending, _start, nl - _start);
                    _start = nl + 1;
                    return line;
                }
                scanned = _end;
                int n = _eof ? 0 : Fill();
                if (n == 0)
                {
                    _eof = true;
                    if (_start == _end)
                        return null;
                    string rest = Utf8.GetString(_pending, _start, _end - _start);
                    _start = _end;
                    return rest;
                }
                if (_end + n > _pending.Length)
                {
                    // Move the unread part to the front, and grow only if that is not enough.
                    int unread = _end - _start;
                    byte[] target = unread + n > _pending.Length ? new byte[Math.Max(_pending.Length * 2, unread + n)] : _pending;
                    Buffer.BlockCopy(_pending, _start, target, 0, unread);
                    _pending = target;
                    scanned -= _start;
                    _start = 0;
                    _end = unread;
                }
                Buffer.BlockCopy(_chunk, 0, _pending, _end, n);
                _end += n;
            }
        }

        private int Fill()
        {
            while (true)
            {
                long n = (long)Native.read(_in, _chunk, (UIntPtr)_chunk.Length);
                if (n >= 0)
                    return (int)n;
                int errno = Marshal.GetLastWin32Error();
                if (errno == Native.EAGAIN)
                    System.Threading.Thread.Sleep(1);
                else if (errno != Native.EINTR)
                {
                    Executor.Note("reading the protocol failed, errno " + errno);
                    return 0;
                }
            }
        }

        public void SendLine(string line)
        {
            byte[] data = Utf8.GetBytes(line);
            lock (_lock)
            {
                if (!WriteAll(data))
                {
                    Executor.Note("the protocol channel is gone; exiting");
                    Environment.Exit(1);
                }
            }
        }

        /// <summary>Writes all of <paramref name="data"/>, also after partial writes.</summary>
        private bool WriteAll(byte[] data)
        {
            GCHandle pin = GCHandle.Alloc(data, GCHandleType.Pinned);
            try
            {
                IntPtr start = pin.AddrOfPinnedObject();
                int off = 0;
                while (off < data.Length)
                {
                    long n = (long)Native.write(_out, start + off, (UIntPtr)(data.Length - off));
                    if (n > 0)
                    {
                        off += (int)n;
                        continue;
                    }
                    int errno = Marshal.GetLastWin32Error();
                    if (errno == Native.EAGAIN)
                        System.Threading.Thread.Sleep(1);
                    else if (errno != Native.EINTR)
                        return false;
                }
                return true;
            }
            finally
            {
                pin.Free();
            }
        }
    }

    internal sealed class InitFailure : Exception
    {
        public InitFailure(string kind, string message) : base(message)
        {
            Kind = kind;
        }

        public string Kind { get; private set; }
    }

    public static class Executor
    {
        private const int ProtocolVersion = 1;
        private static Channel _channel;
        private static Handler _handler;
        private static string _assemblyArg;
        private static string _inFlight;

        public static int Main(string[] args)
        {
            _assemblyArg = args.Length > 0 ? args[0] : null;
            _channel = TakeOverFds();
            // A script that references runwarm.exe gets this very assembly, wherever it was built.
            AppDomain.CurrentDomain.AssemblyResolve += (sender, e) =>
                new AssemblyName(e.Name).Name == typeof(Executor).Assembly.GetName().Name ? typeof(Executor).Assembly : null;
            // Environment.Exit() in a handler, or an exception on a thread of its own, ends the
            // process; answering the request first spares the supervisor a protocol fault.
            AppDomain.CurrentDomain.ProcessExit += (sender, e) =>
                AnswerInFlight("Exit", "the script called Environment.Exit(" + Environment.ExitCode
                    + "); a warm executor does not exit, so it is replaced", null);
            AppDomain.CurrentDomain.UnhandledException += (sender, e) =>
            {
                var ex = e.ExceptionObject as Exception;
                if (ex == null)
                    AnswerInFlight("UnhandledException", "a thread died of " + e.ExceptionObject, null);
                else
                    AnswerInFlight(ex.GetType().Name, "a thread died of this exception, so the executor is replaced: " + MessageOf(ex), TraceOf(ex));
            };
            Serve();
            return 0;
        }

        internal static void Note(string text)
        {
            try
            {
                Console.Error.WriteLine("runwarm: " + text);
                Console.Error.Flush();
            }
            catch (Exception)
            {
                // stderr is gone; nothing left to tell
            }
        }

        private static Channel TakeOverFds()
        {
            int user = 2; // without a user stdout pipe, stderr is the only safe place for user output
            string named = Environment.GetEnvironmentVariable("RUNWARM_STDOUT_FD");
            int fd;
            if (named != null)
            {
                if (int.TryParse(named, out fd) && fd >= 0 && Native.IsOpen(fd))
                    user = fd;
                else
                    Note("RUNWARM_STDOUT_FD=" + named + " is not an open fd; user stdout goes to stderr");
            }
            var channel = new Channel(Native.DupCloexec(0), Native.DupCloexec(1));
            Native.Dup2(user, 1);
            Native.DevNullOnto(0);
            // Explicit UTF-8: the runner clears LANG, and Mono would pick ASCII for the console.
            var utf8 = new UTF8Encoding(false);
            Console.SetOut(new StreamWriter(Console.OpenStandardOutput(), utf8) { AutoFlush = true });
            Console.SetError(new StreamWriter(Console.OpenStandardError(), utf8) { AutoFlush = true });
            return channel;
        }

        /// <summary>Fails the request in flight, if any; for when the process is about to end.</summary>
        private static void AnswerInFlight(string kind, string message, string trace)
        {
            string id = System.Threading.Interlocked.Exchange(ref _inFlight, null);
            if (id != null)
                Fail(id, Error(kind, message, trace));
        }

        internal static void FlushUserOutput()
        {
            try { Console.Out.Flush(); } catch (Exception) { }
            try { Console.Error.Flush(); } catch (Exception) { }
        }

        private static void Send(string json)
        {
            _channel.SendLine(json + "\n");
        }

        private static string Error(string kind, string message, string trace)
        {
            var body = new Dictionary<string, object> { { "kind", kind }, { "message", message } };
            if (trace != null)
                body["trace"] = trace;
            return Json.Serialize(body, false);
        }

        private static void Serve()
        {
            while (true)
            {
                string line = _channel.ReadLine();
                if (line == null)
                    Finish(0); // EOF: the supervisor is gone
                if (line.Trim().Length == 0)
                    continue;
                Dictionary<string, object> msg;
                try
                {
                    msg = Json.Parse(line) as Dictionary<string, object>;
                    if (msg == null)
                        throw new JsonException("not an object");
                }
                catch (Exception e) // JsonException, and anything the reader did not foresee
                {
                    Note("ignoring unreadable protocol line (" + e.Message + ")");
                    continue;
                }
                switch (Str(msg, "type"))
                {
                    case "request":
                        Request(msg);
                        break;
                    case "ping":
                        Send("{\"type\":\"pong\",\"id\":" + Json.Serialize(Get(msg, "id"), false) + "}");
                        break;
                    case "init":
                        Init(msg);
                        break;
                    case "shutdown":
                        Finish(0);
                        break;
                    // anything else comes from a newer supervisor: ignored (PROTOCOL.md §3)
                }
            }
        }

        private static void Init(Dictionary<string, object> msg)
        {
            if (_handler != null)
            {
                Note("ignoring a second init");
                return;
            }
            var script = Get(msg, "script") as Dictionary<string, object> ?? new Dictionary<string, object>();
            string entry = Str(script, "entry") ?? "";
            try
            {
                object protocol = Get(msg, "protocol");
                if (protocol != null && !(protocol is long && (long)protocol == ProtocolVersion))
                    throw new InitFailure("UnsupportedProtocol", "this executor speaks protocol " + ProtocolVersion + ", not " + Json.Serialize(protocol, false));
                _handler = Load(script, Get(msg, "env") as Dictionary<string, object>);
            }
            catch (Exception e)
            {
                var failure = e as InitFailure;
                string error;
                if (failure != null)
                {
                    error = Error(failure.Kind, failure.Message, null);
                }
                else
                {
                    e = Unwrap(e);
                    error = Error(e.GetType().Name, "loading " + entry + ": " + MessageOf(e), TraceOf(e));
                }
                FlushUserOutput();
                Send("{\"type\":\"init_error\",\"error\":" + error + "}");
                Environment.Exit(1);
            }
            FlushUserOutput();
            Send("{\"type\":\"ready\",\"protocol\":" + ProtocolVersion + ",\"runtime\":" + Json.Serialize(RuntimeName(), false)
                + ",\"pid\":" + Native.getpid() + "}");
        }

        private static Handler Load(Dictionary<string, object> script, Dictionary<string, object> env)
        {
            string mode = Str(script, "mode") ?? "handler";
            if (mode != "handler")
                throw new InitFailure("UnsupportedMode", "the C# executor serves handler mode only, not \"" + mode + "\"");
            if (env != null)
                foreach (var kv in env)
                    Environment.SetEnvironmentVariable(kv.Key, kv.Value == null ? "" : kv.Value as string ?? Json.Serialize(kv.Value, false));
            string root = Path.GetFullPath(Str(script, "root") ?? ".");
            string entry = Str(script, "entry") ?? "";
            string name = Str(script, "handler") ?? "handler";
            string path = Path.Combine(root, entry);
            if (entry.Length == 0 || !File.Exists(path))
                throw new InitFailure("EntryNotFound", "entry \"" + entry + "\" not found in " + root);
            // The compiled assembly is named on the command line; without one, the entry is it.
            if (_assemblyArg == null && entry.EndsWith(".cs", StringComparison.OrdinalIgnoreCase))
                throw new InitFailure("EntryNotFound", "entry \"" + entry + "\" is C# source; the executor needs the compiled"
                    + " assembly on its command line (mono runwarm.exe script.dll)");
            string assemblyPath = Path.GetFullPath(_assemblyArg ?? path);
            if (!File.Exists(assemblyPath))
                throw new InitFailure("EntryNotFound", "assembly " + assemblyPath + " not found");
            Environment.CurrentDirectory = root;
            Assembly asm = Assembly.LoadFrom(assemblyPath);
            return Handler.Find(asm, name, entry);
        }

        private static void Request(Dictionary<string, object> msg)
        {
            string id = Str(msg, "id") ?? "";
            if (_handler == null)
            {
                Fail(id, Error("NotInitialized", "request before init", null));
                return;
            }
            var ctx = new Context(id, Get(msg, "context") as Dictionary<string, object>, _channel);
            object result;
            _inFlight = id;
            try
            {
                result = _handler.Invoke(Get(msg, "payload"), ctx);
            }
            catch (Exception e)
            {
                if (System.Threading.Interlocked.Exchange(ref _inFlight, null) == null)
                    return; // answered on the way out of the process
                e = Unwrap(e);
                Fail(id, Error(e.GetType().Name, MessageOf(e), TraceOf(e)));
                return;
            }
            if (System.Threading.Interlocked.Exchange(ref _inFlight, null) == null)
                return;
            string encoded;
            try
            {
                encoded = Json.Serialize(result);
            }
            catch (Exception e) // JsonException, and whatever a property getter throws
            {
                Fail(id, Error("SerializationError", "result is not JSON: " + e.Message, null));
                return;
            }
            FlushUserOutput();
            Send("{\"type\":\"response\",\"id\":" + Json.Serialize(id, false) + ",\"success\":true,\"result\":" + encoded + "}");
        }

        private static void Fail(string id, string error)
        {
            FlushUserOutput();
            Send("{\"type\":\"response\",\"id\":" + Json.Serialize(id, false) + ",\"success\":false,\"error\":" + error + "}");
        }

        /// <summary>The exception the script threw, not the wrappers reflection and tasks add.</summary>
        private static Exception Unwrap(Exception e)
        {
            while (true)
            {
                if (e is TargetInvocationException && e.InnerException != null)
                    e = e.InnerException;
                else if (e is AggregateException && ((AggregateException)e).InnerExceptions.Count == 1)
                    e = e.InnerException;
                else if (e is TypeInitializationException && e.InnerException != null)
                    e = e.InnerException;
                else
                    return e;
            }
        }

        // Frames of the reflection call and of the shim itself say nothing about the script.
        private static readonly string[] OwnFrames =
        {
            "at (wrapper managed-to-native) System.Reflection.", "at System.Reflection.", "at Runwarm.Handler.",
            "at Runwarm.Executor.", "at System.RuntimeMethodHandle.",
        };

        private static string TraceOf(Exception e)
        {
            IEnumerable<string> lines = e.ToString().Split('\n')
                .Where(l => !OwnFrames.Any(f => l.TrimStart().StartsWith(f, StringComparison.Ordinal)))
                .Select(l => l.TrimEnd());
            return string.Join("\n", lines).TrimEnd();
        }

        private static string MessageOf(Exception e)
        {
            return string.IsNullOrEmpty(e.Message) ? e.GetType().Name : e.Message;
        }

        private static string RuntimeName()
        {
            Type mono = Type.GetType("Mono.Runtime");
            MethodInfo display = mono == null ? null : mono.GetMethod("GetDisplayName", BindingFlags.NonPublic | BindingFlags.Static);
            if (display != null)
            {
                // "6.8.0.105 (Debian 6.8.0.105+dfsg-3.3+deb12u1 ...)" -> "mono6.8.0"
                string text = (display.Invoke(null, null) as string ?? "").Split(' ')[0];
                return "mono" + string.Join(".", text.Split('.').Take(3));
            }
            return "dotnet" + Environment.Version;
        }

        /// <summary>Environment.Exit runs ProcessExit handlers and ends every user thread.</summary>
        private static void Finish(int code)
        {
            FlushUserOutput();
            Environment.Exit(code);
        }

        private static object Get(Dictionary<string, object> d, string key)
        {
            object v;
            return d != null && d.TryGetValue(key, out v) ? v : null;
        }

        private static string Str(Dictionary<string, object> d, string key)
        {
            return Get(d, key) as string;
        }
    }

    /// <summary>A resolved handler method and how to call it.</summary>
    internal sealed class Handler
    {
        // What a JSON payload can arrive as; the first parameter must accept one of them.
        private static readonly Type[] JsonTypes =
        {
            typeof(Dictionary<string, object>), typeof(List<object>), typeof(string), typeof(long), typeof(double), typeof(bool),
        };

        private readonly MethodInfo _method;
        private readonly Type _eventType;
        private readonly int _arity;

        private Handler(MethodInfo method)
        {
            _method = method;
            ParameterInfo[] ps = method.GetParameters();
            _arity = ps.Length;
            _eventType = _arity > 0 ? ps[0].ParameterType : null;
        }

        private string Display
        {
            get { return _method.DeclaringType.FullName + "." + _method.Name; }
        }

        public object Invoke(object payload, Context ctx)
        {
            object[] args;
            if (_arity == 0)
                args = new object[0];
            else
            {
                if (payload != null && !_eventType.IsInstanceOfType(payload))
                    throw new ArgumentException(Display + " takes a " + TypeName(_eventType) + " event, but the payload is a JSON "
                        + JsonKind(payload));
                if (payload == null && _eventType.IsValueType)
                    throw new ArgumentException(Display + " takes a " + TypeName(_eventType) + " event, but the payload is null");
                args = _arity == 1 ? new[] { payload } : new[] { payload, ctx };
            }
            object result = _method.Invoke(null, args);
            var task = result as Task;
            if (task == null)
                return result;
            // No SynchronizationContext here, so blocking on the task cannot deadlock.
            task.GetAwaiter().GetResult();
            PropertyInfo value = task.GetType().GetProperty("Result");
            // Task<VoidTaskResult> (an async method returning Task) has no value to report.
            if (value == null || value.PropertyType.Name == "VoidTaskResult")
                return null;
            return value.GetValue(task, null);
        }

        private static string TypeName(Type t)
        {
            if (!t.IsGenericType)
                return t.Name;
            return t.Name.Substring(0, t.Name.IndexOf('`')) + "<" + string.Join(", ", t.GetGenericArguments().Select(TypeName)) + ">";
        }

        private static string JsonKind(object v)
        {
            if (v is Dictionary<string, object>) return "object";
            if (v is List<object>) return "array";
            if (v is string) return "string";
            if (v is bool) return "boolean";
            return "number";
        }

        /// <summary>
        /// `Method` (a public static method of that name in any public type; ambiguity is an
        /// error), `Type.Method` or `Namespace.Type.Method`.
        /// </summary>
        public static Handler Find(Assembly asm, string name, string entry)
        {
            Type[] types = asm.GetExportedTypes();
            int dot = name.LastIndexOf('.');
            List<MethodInfo> candidates;
            if (dot < 0)
            {
                candidates = types.SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
                    .Where(m => m.Name == name && !m.IsSpecialName).ToList();
                List<Type> owners = candidates.Select(m => m.DeclaringType).Distinct().ToList();
                if (owners.Count > 1)
                    throw new InitFailure("HandlerNotFound", "handler \"" + name + "\" is ambiguous: "
                        + string.Join(", ", owners.Select(t => t.FullName + "." + name)) + "; name it Type." + name);
                if (candidates.Count == 0)
                {
                    bool instance = types.Any(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                        .Any(m => m.Name == name));
                    if (instance)
                        throw new InitFailure("HandlerNotCallable", name + " is an instance method; the handler must be public static");
                    throw new InitFailure("HandlerNotFound", entry + " defines no public static method \"" + name + "\" in a public type");
                }
            }
            else
            {
                string typeName = name.Substring(0, dot);
                string methodName = name.Substring(dot + 1);
                List<Type> matches = types.Where(t => t.FullName == typeName).ToList();
                if (matches.Count == 0)
                    matches = types.Where(t => t.Name == typeName).ToList();
                if (matches.Count == 0)
                    throw new InitFailure("HandlerNotFound", entry + " defines no public type " + typeName + " (for handler " + name + ")");
                if (matches.Count > 1)
                    throw new InitFailure("HandlerNotFound", "type " + typeName + " is ambiguous: "
                        + string.Join(", ", matches.Select(t => t.FullName)) + "; use the full name");
                Type type = matches[0];
                MemberInfo[] members = type.GetMember(methodName, BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance);
                candidates = members.OfType<MethodInfo>().Where(m => m.IsStatic).ToList();
                if (candidates.Count == 0)
                {
                    if (members.Length == 0)
                        throw new InitFailure("HandlerNotFound", "type " + type.FullName + " has no public member " + methodName);
                    throw new InitFailure("HandlerNotCallable", type.FullName + "." + methodName + " is a"
                        + (members[0] is MethodInfo ? "n instance method" : " " + members[0].MemberType.ToString().ToLowerInvariant())
                        + "; the handler must be a public static method");
                }
            }
            // Overloads: the richest supported signature wins.
            MethodInfo chosen = candidates.Where(Supported).OrderByDescending(m => m.GetParameters().Length).FirstOrDefault();
            if (chosen == null)
                throw new InitFailure("HandlerNotCallable", candidates[0].DeclaringType.FullName + "." + candidates[0].Name
                    + " has an unsupported signature; use (Dictionary<string, object> ev, Runwarm.Context ctx), (object ev, Runwarm.Context ctx), or either without ctx");
            // Static constructors run now, so their failures are init errors and not the first request's.
            System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(chosen.DeclaringType.TypeHandle);
            return new Handler(chosen);
        }

        private static bool Supported(MethodInfo m)
        {
            if (m.IsGenericMethodDefinition)
                return false;
            ParameterInfo[] ps = m.GetParameters();
            if (ps.Length > 2 || ps.Any(p => p.ParameterType.IsByRef))
                return false;
            if (ps.Length >= 1 && !JsonTypes.Any(t => ps[0].ParameterType.IsAssignableFrom(t)))
                return false;
            return ps.Length < 2 || ps[1].ParameterType.IsAssignableFrom(typeof(Context));
        }
    }
}
