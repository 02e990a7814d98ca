export {
  createRedis,
  redisOptions,
  describeRedis,
  workerConnection,
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisTlsOptions,
} from './redis-connection';
