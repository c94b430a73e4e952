/** SQL files imported as text (`with { type: "text" }`), so the compiled binary carries the migrations. */
declare module "*.sql" {
  const text: string;
  export default text;
}
