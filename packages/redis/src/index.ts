export {
  createRedis,
  redisOptions,
  describeRedis,
  workerConnection,
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisTlsOptions,
} from './redis-connection';
export { ioredis } from './ioredis-lazy';
export { bullmq, unrecoverable } from './bullmq-lazy';
