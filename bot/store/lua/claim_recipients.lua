-- claim_recipients.lua: the next recipients of one shard's share of a broadcast, for
-- the worker that holds (or takes) the share's lease (bot/store/broadcasts.py).
--
-- KEYS[1] the share's counts and lease (hash)  KEYS[2] recipients to send to (list)
-- KEYS[3] recipients claimed, not finished (hash: pseudonym -> '<holder> <claimed ms>
--         <recipient>')  KEYS[4] the share's states (hash: pseudonym -> state)
-- KEYS[5] the shard's subscriptions (hash: pseudonym -> record)
-- ARGV[1] job id  ARGV[2] its try number  ARGV[3] lease (ms)  ARGV[4] recipients wanted
-- The lease ('<job id>|<try>|<expiry ms>') is the caller's when free, expired, its own,
-- or held by an earlier try of the same job (the queue runs a job again only once the
-- worker that had it stopped). Whatever is still claimed when a holder takes the lease
-- was left unfinished by an earlier holder: it is handed back first, as uncertain (the
-- message may have gone). A recipient whose subscription ended since the approval is
-- skipped (counted).
-- Returns {'busy', ms until the lease ends} | {'cancelled'} |
--         {'ok', number uncertain, '<claimed ms> <recipient>'...} (the uncertain first).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = redis.call('HGET', KEYS[1], 'lease')
if lease then
  local job, try, expiry = string.match(lease, '^(.*)|(%d+)|(%d+)$')
  local ours = job == ARGV[1] and tonumber(try) == tonumber(ARGV[2])
  local earlier = job == ARGV[1] and tonumber(try) < tonumber(ARGV[2])
  if not ours and not earlier and tonumber(expiry) > now then
    return {'busy', tonumber(expiry) - now}
  end
end
if redis.call('HGET', KEYS[1], 'cancelled') == '1' then
  redis.call('HDEL', KEYS[1], 'lease')
  return {'cancelled'}
end
local holder = ARGV[1] .. '|' .. ARGV[2]
redis.call('HSET', KEYS[1], 'lease', holder .. '|' .. (now + tonumber(ARGV[3])))
local out = {'ok', 0}
local left = redis.call('HGETALL', KEYS[3])
for i = 1, #left, 2 do
  local claimed, recipient = string.match(left[i + 1], '^%S+ (%d+) (.*)$')
  redis.call('HSET', KEYS[3], left[i], holder .. ' ' .. claimed .. ' ' .. recipient)
  out[#out + 1] = claimed .. ' ' .. recipient
end
out[2] = #out - 2
local wanted = tonumber(ARGV[4])
while #out - 2 < wanted do
  local recipient = redis.call('LPOP', KEYS[2])
  if not recipient then break end
  local pseudonym = string.match(recipient, '^(%S+)')
  if redis.call('HGET', KEYS[4], pseudonym) == 'q' then
    if redis.call('HEXISTS', KEYS[5], pseudonym) == 0 then
      redis.call('HSET', KEYS[4], pseudonym, 'k')
      redis.call('HINCRBY', KEYS[1], 'queued', -1)
      redis.call('HINCRBY', KEYS[1], 'skipped', 1)
    else
      redis.call('HSET', KEYS[4], pseudonym, 'c')
      redis.call('HSET', KEYS[3], pseudonym, holder .. ' ' .. now .. ' ' .. recipient)
      out[#out + 1] = now .. ' ' .. recipient
    end
  end
end
return out
