// The stream engine's gRPC plugins (`fault run --grpc-plugin`): the tunnel
// hooks of relayed connections, and the mailbox through which every
// plugin's answer comes back to the loop. The HTTP hooks are in
// http_proxy.cc, beside the requests and responses they hold.
//
// A call never blocks the loop: the connection's chunk (or request) waits
// in the connection while the call is under way on gRPC's threads, and
// the answer arrives as an item in the loop's mailbox (an eventfd in its
// epoll set). Each direction of a relay sends one chunk at a time through
// the plugins, in registration order, so that a plugin sees a direction's
// bytes in order; reading stops while more than the watermark waits.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "supervisor/stream/stream_loop.h"

namespace fault::stream {

using grpc_module::PluginResult;

PluginMailbox::PluginMailbox() { fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

PluginMailbox::~PluginMailbox() {
  if (fd >= 0) close(fd);
}

void PluginMailbox::Post(Item item) {
  std::lock_guard<std::mutex> lock(mu);
  const bool was_empty = items.empty();
  items.push_back(std::move(item));
  if (was_empty) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
  }
}

std::vector<PluginMailbox::Item> PluginMailbox::Take() {
  uint64_t v;
  (void)!read(fd, &v, sizeof(v));
  std::lock_guard<std::mutex> lock(mu);
  return std::exchange(items, {});
}

bool StreamEngine::Loop::PluginTakesPart(size_t i, uint32_t capability) const {
  const uint32_t f = o_.plugins->Flags(i);
  const bool described = (f & grpc_module::kPluginDescribed) != 0;
  // A plugin never described (down since the start) may take anything
  // once it comes up: failing closed, it holds everything until then.
  if (!(f & grpc_module::kPluginEnabled)) return o_.plugin_fail_closed && (!described || (f & capability));
  return (f & capability) != 0;
}

bool StreamEngine::Loop::AnyPlugin(uint32_t capability) const {
  if (o_.plugins == nullptr) return false;
  for (size_t i = 0; i < o_.plugins->size(); ++i)
    if (PluginTakesPart(i, capability)) return true;
  return false;
}

std::string StreamEngine::Loop::PluginName(size_t i) const {
  grpc_module::PluginDescription d = o_.plugins->Describe(i);
  return d.name.empty() ? d.address : absl::StrCat(d.name, " (", d.address, ")");
}

grpc_module::PluginClient::Done StreamEngine::Loop::PluginDone(Conn* c, uint64_t serial,
                                                               PluginMailbox::Hook hook,
                                                               size_t plugin) {
  std::weak_ptr<PluginMailbox> box = mailbox_;
  const uint64_t conn = c->id;
  return [box, conn, serial, hook, plugin](PluginResult r) {
    std::shared_ptr<PluginMailbox> b = box.lock();
    if (b == nullptr) return;  // the loop is gone
    PluginMailbox::Item item;
    item.conn = conn;
    item.serial = serial;
    item.hook = hook;
    item.plugin = plugin;
    item.result = std::move(r);
    b->Post(std::move(item));
  };
}

void StreamEngine::Loop::OnPluginMail() {
  if (mailbox_ == nullptr) return;
  for (PluginMailbox::Item& item : mailbox_->Take()) {
    auto it = conns_.find(item.conn);
    if (it == conns_.end()) continue;  // closed meanwhile
    Conn* c = it->second.get();
    if (c->state == Conn::kDead) continue;
    switch (item.hook) {
      case PluginMailbox::kHttpRequest:
      case PluginMailbox::kHttpResponse:
        if (c->http != nullptr) HttpPluginAnswer(c, std::move(item));
        break;
      case PluginMailbox::kTunnelUp:
      case PluginMailbox::kTunnelDown: {
        const int d = item.hook == PluginMailbox::kTunnelUp ? 0 : 1;
        if (c->plug == nullptr || !c->plug->dir[d].busy || c->plug->dir[d].serial != item.serial)
          break;
        PlugTunnelAnswer(c, d, item.plugin, std::move(item.result));
        break;
      }
    }
  }
}

// ---------------------------------------------------------------- tunnels ---

void StreamEngine::Loop::PlugTunnelStart(Conn* c) {
  if (!AnyPlugin(grpc_module::kPluginTunnel)) return;
  c->plug = std::make_unique<PlugTunnel>();
  c->plug->id = absl::StrCat("fault-", getpid(), "-", index_, "-", c->id);
}

void StreamEngine::Loop::Relay(Conn* c, int d, const char* buf, size_t n, int64_t now) {
  if (c->proto != nullptr && d == c->proto_dir) return ProtoRelay(c, buf, n, now);
  RelayRaw(c, d, buf, n, now);
}

void StreamEngine::Loop::RelayRaw(Conn* c, int d, const char* buf, size_t n, int64_t now) {
  if (c->plug == nullptr) return Ingest(c, d, buf, n, now);
  if (c->dir[d].stalled) return;  // closed by a plugin, or black-holed
  PlugDir& pd = c->plug->dir[d];
  pd.pending.emplace_back(buf, n);
  c->dir[d].plug_queued += n;
  if (!pd.busy) PlugTunnelStep(c, d);
}

// Sends the direction's chunk on to its next plugin, or, past the last,
// on to the connection's effects; then the next chunk.
void StreamEngine::Loop::PlugTunnelStep(Conn* c, int d) {
  PlugDir& pd = c->plug->dir[d];
  for (int round = 0; round < 4096 && c->state != Conn::kDead; ++round) {
    if (!pd.busy) {
      if (pd.pending.empty()) return;
      pd.cur = std::move(pd.pending.front());
      pd.cur_read = pd.cur.size();
      pd.pending.pop_front();
      pd.busy = true;
      pd.next = 0;
    }
    while (pd.next < o_.plugins->size() &&
           !PluginTakesPart(pd.next, grpc_module::kPluginTunnel))
      ++pd.next;
    if (pd.next < o_.plugins->size()) {
      const size_t i = pd.next;
      const uint32_t f = o_.plugins->Flags(i);
      const int side = (f & grpc_module::kPluginServerSide) ? grpc_module::kPluginSideServer
                                                             : grpc_module::kPluginSideClient;
      // Read on the plugin's side: ingress; read on the other and written
      // on its side: egress.
      const int direction = d == side ? grpc_module::kPluginIngress : grpc_module::kPluginEgress;
      ++pd.serial;
      o_.plugins->ProcessTunnelData(
          i, c->plug->id, side, direction, pd.cur,
          PluginDone(c, pd.serial, d == 0 ? PluginMailbox::kTunnelUp : PluginMailbox::kTunnelDown,
                     i));
      return;  // the answer continues (OnPluginMail)
    }
    // Through every plugin.
    Dir& dir = c->dir[d];
    std::string chunk = std::move(pd.cur);
    pd.cur.clear();
    pd.busy = false;
    dir.plug_queued -= std::min(dir.plug_queued, pd.cur_read);
    if (!chunk.empty()) Ingest(c, d, chunk.data(), chunk.size(), NowNs());
    Schedule(c, NowNs());
  }
  if (c->state != Conn::kDead && (pd.busy || !pd.pending.empty())) Schedule(c, NowNs());
}

void StreamEngine::Loop::PlugTunnelAnswer(Conn* c, int d, size_t plugin, PluginResult r) {
  PlugDir& pd = c->plug->dir[d];
  switch (r.kind) {
    case PluginResult::kFailed:
      if (o_.plugin_fail_closed) {
        plugin_refused_.fetch_add(1, std::memory_order_relaxed);
        Fail(c, ECONNRESET);
        return;
      }
      plugin_bypassed_.fetch_add(1, std::memory_order_relaxed);
      break;
    case PluginResult::kPassThrough:
      if (!r.chunk.empty()) pd.cur = std::move(r.chunk);
      break;
    case PluginResult::kReplace:
      pd.cur = std::move(r.chunk);
      if (pd.cur.empty()) pd.next = o_.plugins->size();  // nothing left to pass on
      break;
    case PluginResult::kBuffer:
      // Held back for the time the plugin estimated, then on to the next
      // plugin (PlugService).
      pd.hold_until = NowNs() + r.buffer_ms * 1'000'000;
      pd.next = plugin + 1;
      Schedule(c, pd.hold_until);
      return;
    case PluginResult::kClose:
      PlugTunnelClose(c);
      return;
    default:  // HTTP kinds: not an answer to this call
      break;
  }
  pd.next = plugin + 1;
  PlugTunnelStep(c, d);
  if (c->state != Conn::kDead) Schedule(c, NowNs());
}

// A plugin closed the connection: nothing more is read or passed on
// through the plugins; what already passed them is delivered, then both
// sides get a FIN.
void StreamEngine::Loop::PlugTunnelClose(Conn* c) {
  for (int d = 0; d < 2; ++d) {
    PlugDir& pd = c->plug->dir[d];
    pd.pending.clear();
    pd.cur.clear();
    pd.busy = false;
    pd.hold_until = 0;
    ++pd.serial;  // an answer under way is stale
    c->dir[d].plug_queued = 0;
    c->dir[d].src_eof = true;
    c->dir[d].stalled = true;
  }
  Schedule(c, NowNs());
}

void StreamEngine::Loop::PlugService(Conn* c, int64_t now) {
  for (int d = 0; d < 2; ++d) {
    PlugDir& pd = c->plug->dir[d];
    if (pd.hold_until == 0) continue;
    if (now < pd.hold_until) {
      Schedule(c, pd.hold_until);
      continue;
    }
    pd.hold_until = 0;
    PlugTunnelStep(c, d);
    if (c->state == Conn::kDead) return;
  }
}

}  // namespace fault::stream
