# frozen_string_literal: true

# runwarm executor shim for Ruby (protocol v1, handler mode). Standard library only; Ruby >= 2.7.
#
# Speaks the JSON Lines protocol of protocol/PROTOCOL.md with the runwarm supervisor: reads
# `init`, loads the script's entry once, then calls its handler once per `request`, strictly one
# message at a time.
#
# File descriptors: the protocol arrives on fd 0 and leaves on fd 1, user stdout belongs on the
# fd named in RUNWARM_STDOUT_FD (3), user stderr on fd 2. Before any user code runs, the shim
# keeps private duplicates of fds 0 and 1 for the protocol (Ruby opens every fd close-on-exec, so
# child processes never inherit them), then reopens fd 1 onto the user stdout pipe and fd 0 onto
# /dev/null. `puts`, `STDOUT.syswrite`, `IO.new(1)` and child processes therefore all write user
# output where it belongs, and nothing the script does can read or forge protocol bytes.

require "json"

module Runwarm
  PROTOCOL_VERSION = 1
  SHIM_FILE = File.expand_path(__FILE__)
  SHIM_PATH_AS_GIVEN = __FILE__
  # Deeper results are refused rather than risking SystemStackError on a cyclic structure.
  MAX_DEPTH = 512

  def self.note(text)
    $stderr.write("runwarm: #{text}\n")
  rescue StandardError
    nil # stderr is gone; nothing left to tell
  end

  # Returns [protocol_in, protocol_out] after moving user stdio off the protocol fds.
  def self.take_over_fds
    proto_in = STDIN.dup
    proto_out = STDOUT.dup
    proto_in.binmode
    proto_out.binmode
    proto_out.sync = true
    user = nil
    named = ENV["RUNWARM_STDOUT_FD"]
    unless named.nil?
      begin
        user = IO.for_fd(Integer(named, 10), autoclose: false)
      rescue ArgumentError, SystemCallError
        note("RUNWARM_STDOUT_FD=#{named.inspect} is not an open fd; user stdout goes to stderr")
      end
    end
    # Without a user stdout pipe, stderr is the only safe place for user output.
    STDOUT.reopen(user || STDERR)
    STDIN.reopen(File::NULL)
    # Synchronous, so output written before a response is in the pipe when the response is sent.
    STDOUT.sync = true
    $stdout = STDOUT
    $stdin = STDIN
    [proto_in, proto_out]
  end

  def self.utf8(text)
    text = text.to_s
    text = text.dup.force_encoding(Encoding::UTF_8) if text.encoding == Encoding::BINARY
    text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
  end

  def self.flush_user_output
    [$stdout, $stderr, STDOUT, STDERR].uniq.each do |io|
      io.flush
    rescue StandardError
      nil
    end
  end

  # The protocol output: one JSON object per line, written whole under a lock so that a log call
  # from a user thread cannot interleave with a response.
  class Channel
    def initialize(out)
      @out = out
      @lock = Mutex.new
    end

    def send_line(line)
      @lock.synchronize { @out.write(line) }
    end

    def deliver(msg)
      send_line(JSON.generate(msg, max_nesting: false) << "\n")
    end
  end

  class SerializationFailure < StandardError; end

  # JSON-native copy of `value`, or SerializationFailure. The json library would encode any object
  # through `to_s` ("#<Set: {1}>"); a result like that is a bug in the handler, not data.
  def self.plain(value, depth = 0)
    raise SerializationFailure, "nesting deeper than #{MAX_DEPTH} (a cycle?)" if depth > MAX_DEPTH

    case value
    when nil, true, false, Integer then value
    when String
      raise SerializationFailure, "string #{value[0, 40].inspect} is not valid #{value.encoding}" unless value.valid_encoding?

      value
    when Float
      raise SerializationFailure, "#{value} has no JSON encoding" unless value.finite?

      value
    when Symbol then value.to_s
    when Hash
      value.each_with_object({}) do |(k, v), out|
        key = case k
              when String, Symbol, Integer then k.to_s
              else raise SerializationFailure, "a #{k.class} hash key has no JSON encoding"
              end
        out[key] = plain(v, depth + 1)
      end
    when Array then value.map { |v| plain(v, depth + 1) }
    else
      custom = value.respond_to?(:to_json) && value.method(:to_json).owner
      if custom && custom != Object && !custom.name.to_s.start_with?("JSON::")
        JSON.parse(value.to_json, max_nesting: false)
      else
        raise SerializationFailure, "a #{value.class} has no JSON encoding (return hashes, arrays, strings, numbers, " \
                                    "booleans or nil, or define to_json)"
      end
    end
  end

  # Frames from here on are the shim's own and say nothing about the script.
  def self.user_frames(exc)
    (exc.backtrace || []).take_while { |l| !l.start_with?("#{SHIM_FILE}:", "#{SHIM_PATH_AS_GIVEN}:") }
  end

  def self.error_body(exc, message = nil)
    full = exc.class.name || exc.class.inspect
    # PROTOCOL.md wants a short class name (Errno::ENOENT -> ENOENT); the trace keeps the full one.
    kind = full.split("::").last
    message ||= utf8(exc.message)
    message = kind if message.empty?
    trace = +"#{full}: #{message}"
    user_frames(exc).each { |l| trace << "\n  from " << utf8(l) }
    cause = exc.cause
    3.times do
      break if cause.nil?

      trace << "\nCaused by #{cause.class.name}: " << utf8(cause.message)
      user_frames(cause).each { |l| trace << "\n  from " << utf8(l) }
      cause = cause.cause
    end
    { "kind" => kind, "message" => message, "trace" => trace }
  end

  # What a handler gets besides the event. `log` sends a structured record tagged with the
  # request, so the supervisor files it under this execution.
  class Context
    attr_reader :request_id, :execution_id, :deadline_ms, :attempt, :caller

    def initialize(request_id, ctx, channel)
      @request_id = request_id
      @execution_id = ctx["execution_id"] || ""
      @deadline_ms = ctx["deadline_ms"] || 0
      @attempt = ctx["attempt"] || 1
      @caller = ctx["caller"] || {}
      @channel = channel
    end

    def remaining_ms
      [0, @deadline_ms - Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)].max
    end

    # The name AWS Lambda's Ruby context uses, so ported handlers keep working.
    alias get_remaining_time_in_millis remaining_ms

    # log("msg"), log("msg", "warn", {"n" => 2}) and log("msg", level: :warn, n: 2) all work.
    def log(message, level = nil, fields = nil, **kwfields)
      level = kwfields.delete(:level) || level || "info"
      fields = fields.nil? ? {} : (fields.is_a?(Hash) ? fields : { "value" => fields })
      fields = fields.merge(kwfields)
      msg = { "type" => "log", "id" => @request_id, "level" => level.to_s, "message" => Runwarm.utf8(message) }
      Runwarm.flush_user_output
      unless fields.empty?
        msg["fields"] = begin
          Runwarm.plain(fields)
        rescue SerializationFailure, JSON::JSONError
          fields.to_h { |k, v| [k.to_s, Runwarm.utf8(v.inspect)] }
        end
      end
      @channel.deliver(msg)
      nil
    end
  end

  class InitFailure < StandardError
    attr_reader :kind

    def initialize(kind, message)
      super(message)
      @kind = kind
    end
  end

  # A callable that runs the handler with the arguments its signature asks for: (event, context),
  # (event), (), or Lambda's keyword style (event:, context:).
  def self.invoker(meth)
    params = meth.parameters
    keys = params.select { |type, _| %i[key keyreq].include?(type) }.map(&:last)
    if keys.include?(:event)
      with_ctx = keys.include?(:context) || params.any? { |type, _| type == :keyrest }
      return ->(event, ctx) { with_ctx ? meth.call(event: event, context: ctx) : meth.call(event: event) }
    end
    positional = params.count { |type, _| %i[req opt].include?(type) }
    rest = params.any? { |type, _| type == :rest }
    case rest ? 2 : [positional, 2].min
    when 0 then ->(_event, _ctx) { meth.call }
    when 1 then ->(event, _ctx) { meth.call(event) }
    else ->(event, ctx) { meth.call(event, ctx) }
    end
  end

  def self.find_handler(entry, name)
    main = TOPLEVEL_BINDING.receiver
    if name.include?(".")
      owner_name, _, meth = name.rpartition(".")
      owner = begin
        Object.const_get(owner_name)
      rescue NameError
        raise InitFailure.new("HandlerNotFound", "#{entry} defines no #{owner_name} (for handler #{name.inspect})")
      end
      unless owner.respond_to?(meth)
        raise InitFailure.new("HandlerNotFound", "#{owner_name} has no public method #{meth.inspect}") if owner.is_a?(Module)

        raise InitFailure.new("HandlerNotCallable", "#{owner_name} is a #{owner.class}, not a module or class")
      end
      return owner.method(meth)
    end
    if name.match?(/\A[A-Z]/) && Object.const_defined?(name)
      value = Object.const_get(name)
      raise InitFailure.new("HandlerNotCallable", "#{name} is a #{value.class}, not callable") unless value.respond_to?(:call)

      return value.method(:call)
    end
    # A top-level `def handler` is a private method of Object; Kernel's methods (puts, exit) are
    # not handlers even though main responds to them.
    meth = begin
      main.method(name)
    rescue NameError
      nil
    end
    if meth.nil? || !(meth.owner == Object || meth.owner == main.singleton_class)
      raise InitFailure.new("HandlerNotFound", "#{entry} defines no top-level method #{name.inspect}")
    end

    meth
  end

  def self.load_handler(script, env)
    mode = script["mode"] || "handler"
    raise InitFailure.new("UnsupportedMode", "the ruby executor serves handler mode only, not #{mode.inspect}") if mode != "handler"

    (env || {}).each { |k, v| ENV[k.to_s] = v.nil? ? "" : v.to_s }
    root = File.expand_path(script["root"] || ".")
    entry = script["entry"].to_s
    name = (script["handler"] || "handler").to_s
    path = File.expand_path(entry, root)
    raise InitFailure.new("EntryNotFound", "entry #{entry.inspect} not found in #{root}") if entry.empty? || !File.file?(path)

    Dir.chdir(root)
    $LOAD_PATH.unshift(root)
    # `load` takes any file name; wrap=false keeps top-level defs where `find_handler` looks.
    load(path, false)
    invoker(find_handler(entry, name))
  end

  class Executor
    def initialize(proto_in, channel)
      @in = proto_in
      @channel = channel
      @handler = nil
    end

    def serve
      loop do
        line = @in.gets
        finish(0) if line.nil? # EOF: the supervisor is gone
        line.force_encoding(Encoding::UTF_8)
        next if line.strip.empty?

        begin
          msg = JSON.parse(line, max_nesting: MAX_DEPTH)
          raise TypeError, "not an object" unless msg.is_a?(Hash)
        rescue JSON::ParserError, TypeError => e
          Runwarm.note("ignoring unreadable protocol line (#{e.message})")
          next
        end
        case msg["type"]
        when "request" then request(msg)
        when "ping" then @channel.deliver({ "type" => "pong", "id" => msg["id"] })
        when "init" then init(msg)
        when "shutdown" then finish(0)
          # anything else comes from a newer supervisor: ignored (PROTOCOL.md §3)
        end
      end
    end

    def init(msg)
      unless @handler.nil?
        Runwarm.note("ignoring a second init")
        return
      end
      begin
        protocol = msg.fetch("protocol", PROTOCOL_VERSION)
        if protocol != PROTOCOL_VERSION
          raise InitFailure.new("UnsupportedProtocol", "this executor speaks protocol #{PROTOCOL_VERSION}, not #{protocol.inspect}")
        end

        @handler = Runwarm.load_handler(msg["script"] || {}, msg["env"])
      rescue SignalException
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException -- SyntaxError, LoadError, exit in top-level code
        body = if e.is_a?(InitFailure)
                 { "kind" => e.kind, "message" => e.message }
               else
                 Runwarm.error_body(e).tap { |b| b["message"] = "loading #{msg.dig('script', 'entry')}: #{b['message']}" }
               end
        Runwarm.flush_user_output
        @channel.deliver({ "type" => "init_error", "error" => body })
        exit!(1)
      end
      Runwarm.flush_user_output
      @channel.deliver({ "type" => "ready", "protocol" => PROTOCOL_VERSION, "runtime" => "ruby#{RUBY_VERSION}", "pid" => Process.pid })
    end

    def request(msg)
      id = msg["id"]
      if @handler.nil?
        fail_request(id, { "kind" => "NotInitialized", "message" => "request before init" })
        return
      end
      ctx = Context.new(id, msg["context"] || {}, @channel)
      begin
        result = @handler.call(msg["payload"], ctx)
      rescue SignalException
        raise # SIGTERM/SIGINT from outside end the executor, as they would any process
      rescue Exception => e # rubocop:disable Lint/RescueException -- `exit` in a handler fails the request too
        message = "handler called exit(#{e.status}); a warm executor does not exit" if e.is_a?(SystemExit)
        fail_request(id, Runwarm.error_body(e, message))
        return
      end
      begin
        line = JSON.generate({ "type" => "response", "id" => id, "success" => true, "result" => Runwarm.plain(result) },
                             max_nesting: false)
      rescue SerializationFailure, JSON::JSONError, EncodingError => e
        fail_request(id, { "kind" => "SerializationError", "message" => "result is not JSON: #{Runwarm.utf8(e.message)}" })
        return
      end
      Runwarm.flush_user_output
      @channel.send_line(line << "\n")
    end

    def fail_request(id, error)
      Runwarm.flush_user_output
      @channel.deliver({ "type" => "response", "id" => id, "success" => false, "error" => error })
    end

    # `exit` runs at_exit hooks and ensure clauses and kills user threads, so a thread that never
    # ends cannot keep a retired executor alive.
    def finish(code)
      Runwarm.flush_user_output
      exit(code)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  proto_in, proto_out = Runwarm.take_over_fds
  Runwarm::Executor.new(proto_in, Runwarm::Channel.new(proto_out)).serve
end
